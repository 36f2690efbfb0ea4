"""Client authentication of EHRs by the CDS Hooks JWT (CDS Hooks 2.0.1, Security)."""
