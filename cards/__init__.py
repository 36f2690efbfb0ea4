"""Card content as data (texts, templates, the rationale page); installed as cds_service.cards."""
