"""This service's external base URL, built one way for every link and check that needs it (card
links to /rationale, the JWT audience, the preview page's discovery URL)."""

from __future__ import annotations

from flask import request

from cds_service.config.settings import Settings


def base_url(settings: Settings) -> str:
    """CDS_PUBLIC_BASE_URL behind proxies, else scheme + Host header of this request (what
    werkzeug's host_url gives, without its IRI round trip on every call); no trailing slash."""
    base = settings.public_base_url or f"{request.scheme}://{request.host}{request.script_root}"
    return base.rstrip("/")
