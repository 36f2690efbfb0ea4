"""Which keys check a token (keys registered out of band win over `jku`), and token lifetimes.

The tokens are shaped like the CDS Hooks Sandbox's: ES384, `kid` and `jku` in the header; `iss`,
`aud` = the endpoint URL, `exp` = `iat` + 300 and `jti` in the claims, no `sub`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from support.builders import AS_OF, REFERRAL_URL, condition, hook_body
from support.tokens import BASE, Ehr, issuer_file

from cds_service.app import create_app

AUD = BASE + REFERRAL_URL
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
REGISTERED_URL = "https://keys.example.org/sandbox-jwks.json"
BODY = hook_body([condition("fx", "M80.08XA")])


@pytest.fixture(scope="module")
def sandbox() -> Ehr:
    return Ehr(SANDBOX_ISS, "ES384", "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f")


def _token(ehr: Ehr, jku: str | None = SANDBOX_JKU, **claims: Any) -> str:
    now = int(time.time())
    shaped = {"sub": None, "iat": now, "exp": now + 300, **claims}
    return ehr.token(AUD, headers={"jku": jku} if jku else None, **shaped)


def _app(tmp_path: Path, issuer: dict[str, Any], **overrides: Any) -> Flask:
    return create_app(
        clock=lambda: AS_OF,
        auth="jwt",
        trusted_issuers=issuer_file(tmp_path, issuer),
        public_base_url=BASE,
        database_url=f"sqlite:///{tmp_path}/keys.sqlite",
        **overrides,
    )


def _status(app: Flask, token: str) -> int:
    response = app.test_client().post(REFERRAL_URL, json=BODY, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_sandbox_token_claims_have_the_sandbox_shape(sandbox: Ehr) -> None:
    import jwt

    token = _token(sandbox)
    header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    assert (header["alg"], header["kid"], header["jku"]) == ("ES384", sandbox.kid, SANDBOX_JKU)
    assert set(claims) == {"iss", "aud", "exp", "iat", "jti"}
    assert claims["exp"] - claims["iat"] == 300


@responses.activate
def test_static_jwks_holding_the_kid_wins_and_jku_is_not_fetched(tmp_path: Path, sandbox: Ehr) -> None:
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jwks": sandbox.jwks})
    assert _status(app, _token(sandbox)) == 200
    assert _status(app, _token(sandbox, jku="https://evil.example.org/jwks.json")) == 200
    assert len(responses.calls) == 0  # nothing fetched, neither the jku nor anything else


@responses.activate
def test_registered_jwks_url_wins_over_a_jku_not_on_the_allowlist(tmp_path: Path, sandbox: Ehr) -> None:
    responses.get(REGISTERED_URL, json=sandbox.jwks)
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jwks_url": REGISTERED_URL})
    assert _status(app, _token(sandbox)) == 200
    assert [call.request.url for call in responses.calls] == [REGISTERED_URL]


@responses.activate
def test_allowlisted_jku_is_fetched_when_no_key_is_registered(tmp_path: Path, sandbox: Ehr) -> None:
    responses.get(SANDBOX_JKU, json=sandbox.jwks)
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jku_allowlist": [SANDBOX_JKU]})
    assert _status(app, _token(sandbox)) == 200
    assert [call.request.url for call in responses.calls] == [SANDBOX_JKU]


@responses.activate
def test_allowlisted_jku_serves_a_kid_the_static_keys_lack(tmp_path: Path, sandbox: Ehr) -> None:
    rotated = Ehr(SANDBOX_ISS, "ES384", "rotated-key")
    responses.get(SANDBOX_JKU, json=rotated.jwks)
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jwks": sandbox.jwks, "jku_allowlist": [SANDBOX_JKU]})
    assert _status(app, _token(sandbox)) == 200
    assert len(responses.calls) == 0
    assert _status(app, _token(rotated)) == 200
    assert [call.request.url for call in responses.calls] == [SANDBOX_JKU]


@responses.activate
def test_unknown_kid_with_a_jku_off_the_allowlist_is_401_unfetched(tmp_path: Path, sandbox: Ehr) -> None:
    stranger = Ehr(SANDBOX_ISS, "ES384", "not-registered")
    responses.get("https://evil.example.org/jwks.json", json=stranger.jwks)
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jwks": sandbox.jwks})
    assert _status(app, _token(stranger, jku="https://evil.example.org/jwks.json")) == 401
    assert len(responses.calls) == 0


def test_a_registered_kid_with_another_key_still_fails_the_signature(tmp_path: Path, sandbox: Ehr) -> None:
    impostor = Ehr(SANDBOX_ISS, "ES384", sandbox.kid)  # same kid, its own key, its own jku
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jwks": sandbox.jwks})
    assert _status(app, _token(impostor, jku="https://evil.example.org/jwks.json")) == 401


@pytest.mark.parametrize(
    ("lifetime", "status"), [(300, 200), (330, 200), (331, 401), (3600, 401), (10 * 365 * 86400, 401)]
)
def test_token_lifetime_is_at_most_the_maximum_plus_the_leeway(
    tmp_path: Path, sandbox: Ehr, lifetime: int, status: int
) -> None:
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jwks": sandbox.jwks})
    now = int(time.time())
    assert _status(app, _token(sandbox, jku=None, iat=now, exp=now + lifetime)) == status


def test_the_maximum_lifetime_is_configurable(tmp_path: Path, sandbox: Ehr) -> None:
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jwks": sandbox.jwks}, jwt_max_lifetime_seconds=3600)
    now = int(time.time())
    assert _status(app, _token(sandbox, jku=None, iat=now, exp=now + 3600)) == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 253402300800},  # 10000-01-01
        {"exp": 10**30},
        {"iat": 253402300800, "exp": 253402301100},
        {"iat": -(10**20)},
        {"exp": 1e308},
    ],
)
def test_absurd_dates_are_401_not_500(tmp_path: Path, sandbox: Ehr, claims: dict[str, Any]) -> None:
    app = _app(tmp_path, {"iss": SANDBOX_ISS, "jwks": sandbox.jwks})
    assert _status(app, _token(sandbox, jku=None, **claims)) == 401
