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
    fixed = [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cache-Control", "no-store"),
    ]
    if hsts:
        fixed.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))

    @app.after_request
    def secure(response: Response) -> Response:
        # A header the view set stays. The names present are read once: werkzeug's `setdefault`
        # and `in` raise and catch an HTTP exception for every absent header (~2 us each).
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        csp = HTML_CSP if response.mimetype == "text/html" else API_CSP
        for name, value in (*fixed, ("Content-Security-Policy", csp)):
            if name.lower() not in present:
                headers.add(name, value)
        return response
