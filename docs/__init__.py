"""The user documentation, shipped as `cds_service.docs` so /rationale renders clinical-rules.md."""
