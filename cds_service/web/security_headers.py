"""Headers every response carries: no sniffing, no referrer, no caching of API answers (they hold
patient-derived content), no framing, and a strict CSP (HTML pages get inline styles only)."""

from __future__ import annotations

from flask import Flask, Response

HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SCRIPTED_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""For the demo preview page only: its own script and stylesheet, and calls to this origin."""
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


def install_security_headers(app: Flask, *, hsts: bool) -> None:
    @app.after_request
    def secure(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cache-Control", "no-store")
        html = response.mimetype == "text/html"
        headers.setdefault("Content-Security-Policy", HTML_CSP if html else API_CSP)
        if hsts:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
