"""CORS for browser-based clients (the CDS Hooks sandbox) and security headers on every response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.builders import AS_OF, REFERRAL_URL, hook_body
from support.tokens import BASE, Ehr, issuer_file

from cds_service.app import create_app
from cds_service.web.security_headers import SCRIPTED_PAGE_CSP

SANDBOX = "https://sandbox.cds-hooks.org"
PREFLIGHT = {
    "Origin": SANDBOX,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def _jwt_app(tmp_path: Path, **overrides: Any) -> Flask:
    ehr = Ehr()
    return create_app(
        clock=lambda: AS_OF,
        trusted_issuers=issuer_file(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks}),
        public_base_url=BASE,
        **overrides,
    )


def test_preflight_for_a_hook_call_with_authorization_passes_without_a_token(tmp_path: Path) -> None:
    client = _jwt_app(tmp_path, cors_origins=f"{SANDBOX}, https://ehr.example.org").test_client()
    response = client.options(REFERRAL_URL, headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_other_origins_get_no_cors_headers(tmp_path: Path) -> None:
    client = _jwt_app(tmp_path, cors_origins=SANDBOX).test_client()
    response = client.options(REFERRAL_URL, headers={**PREFLIGHT, "Origin": "https://evil.example.org"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_unless_configured(tmp_path: Path) -> None:
    response = _jwt_app(tmp_path).test_client().options(REFERRAL_URL, headers=PREFLIGHT)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_demo_allows_any_origin_on_real_calls_too() -> None:
    client = create_app(clock=lambda: AS_OF, auth="off", demo=True).test_client()
    response = client.post(REFERRAL_URL, json=hook_body(), headers={"Origin": SANDBOX})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", SANDBOX)
    discovery = client.get("/cds-services", headers={"Origin": SANDBOX})
    assert discovery.headers["Access-Control-Allow-Origin"] in ("*", SANDBOX)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/cds-services", 200),
        ("post", REFERRAL_URL, 401),
        ("get", "/rationale", 200),
        ("get", "/openapi.json", 200),
        ("get", "/nothing", 401),
    ],
)
def test_security_headers_on_every_response(tmp_path: Path, method: str, path: str, status: int) -> None:
    response = getattr(_jwt_app(tmp_path).test_client(), method)(path)
    assert response.status_code == status
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Strict-Transport-Security"].startswith("max-age=")  # public base URL is https


def test_html_pages_get_a_csp_that_allows_their_inline_style_only(client: Any) -> None:
    csp = client.get("/rationale").headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in csp
    assert "script-src" not in csp  # falls back to default-src 'none': no script runs
    assert "Strict-Transport-Security" not in client.get("/rationale").headers  # plain http locally


def test_errors_carry_the_headers_too(client: Any) -> None:
    response = client.post(REFERRAL_URL, data=b"{", content_type="application/json")
    assert response.status_code == 400
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_header_the_view_set_is_kept_and_none_is_doubled() -> None:
    # The demo preview page sets its own CSP (it runs its own script): the default must not replace
    # it, and no security header may appear twice on any response.
    client = create_app(clock=lambda: AS_OF, auth="off", demo=True).test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers.getlist("Content-Security-Policy") == [SCRIPTED_PAGE_CSP]
    for response in (page, client.get("/cds-services"), client.post(REFERRAL_URL, json=hook_body())):
        for name in ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Cache-Control"):
            assert len(response.headers.getlist(name)) == 1, name
