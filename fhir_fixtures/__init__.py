"""FHIR R4 scenario fixtures (see README.md); installed as cds_service.fixtures for the demo."""
