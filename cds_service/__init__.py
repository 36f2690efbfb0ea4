"""Vertebral augmentation CDS: a CDS Hooks 2.0 service for recent vertebral compression fractures."""

__version__ = "0.1.0"
