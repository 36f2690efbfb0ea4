"""JWT client authentication (CDS Hooks 2.0.1 Security): what passes, and every way to get a bare 401."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from flask import Flask
from flask.testing import FlaskClient
from support.builders import AS_OF, REFERRAL_URL, condition, feedback_entry, hook_body
from support.tokens import BASE, Ehr, issuer_file, unsigned

from cds_service.app import create_app

AUD = BASE + REFERRAL_URL
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
BODY = hook_body([condition("fx", "M80.08XA")])


@pytest.fixture(scope="module")
def ehr() -> Ehr:
    return Ehr()


@pytest.fixture(scope="module")
def rsa_ehr() -> Ehr:
    return Ehr("https://rsa-ehr.example.org", "RS384", "rsa-key")


def _app(tmp_path: Path, *issuers: dict[str, Any], **overrides: Any) -> Flask:
    settings: dict[str, Any] = {
        "clock": lambda: AS_OF,
        "auth": "jwt",
        "trusted_issuers": issuer_file(tmp_path, *issuers),
        "public_base_url": BASE,
        "database_url": overrides.pop("database_url", f"sqlite:///{tmp_path}/auth.sqlite"),
    }
    return create_app(**settings, **overrides)


@pytest.fixture
def client(tmp_path: Path, ehr: Ehr) -> FlaskClient:
    return _app(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks}).test_client()


def _call(client: FlaskClient, token: str | None, url: str = REFERRAL_URL, body: Any = BODY) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(url, json=body, headers=headers)


def _refused(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_data() == b""


def test_valid_es384_token_passes(client: FlaskClient, ehr: Ehr) -> None:
    response = _call(client, ehr.token(AUD))
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1


@responses.activate
def test_valid_rs384_token_from_a_jwks_url_passes(tmp_path: Path, rsa_ehr: Ehr) -> None:
    responses.get(JWKS_URL, json=rsa_ehr.jwks)
    client = _app(tmp_path, {"iss": rsa_ehr.iss, "jwks_url": JWKS_URL}).test_client()
    assert _call(client, rsa_ehr.token(AUD)).status_code == 200
    assert _call(client, rsa_ehr.token(AUD)).status_code == 200
    assert len(responses.calls) == 1  # the JWKS is cached


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "PS384"])
def test_other_asymmetric_algorithms_pass(tmp_path: Path, alg: str) -> None:
    other = Ehr(alg=alg, kid="k-" + alg)
    client = _app(tmp_path, {"iss": other.iss, "jwks": other.jwks}).test_client()
    assert _call(client, other.token(AUD)).status_code == 200


def test_audience_as_an_array_passes(client: FlaskClient, ehr: Ehr) -> None:
    assert _call(client, ehr.token(["https://other.example.org", AUD])).status_code == 200


def test_clock_skew_within_the_leeway_passes(client: FlaskClient, ehr: Ehr) -> None:
    now = int(time.time())
    assert _call(client, ehr.token(AUD, exp=now - 10, iat=now - 300)).status_code == 200
    assert _call(client, ehr.token(AUD, iat=now + 10)).status_code == 200


def test_extra_claims_are_accepted(client: FlaskClient, ehr: Ehr) -> None:
    token = ehr.token(AUD, nbf=int(time.time()) - 5, tenant="t1", sub="client-7", fhirUser="Practitioner/x")
    assert _call(client, token).status_code == 200


def test_no_token_is_401(client: FlaskClient) -> None:
    _refused(_call(client, None))


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer ", "Bearer garbage", "Bearer a.b.c", "Basic dXNlcjpwdw==", "x"]
)
def test_garbage_is_401(client: FlaskClient, value: str) -> None:
    _refused(client.post(REFERRAL_URL, json=BODY, headers={"Authorization": value}))


def test_alg_none_is_401(client: FlaskClient, ehr: Ehr, caplog: pytest.LogCaptureFixture) -> None:
    for alg in ("none", "None", "NONE"):
        _refused(_call(client, unsigned({"alg": alg, "kid": ehr.kid, "typ": "JWT"}, ehr.claims(AUD))))
    assert _reasons(caplog) == {"algorithm not allowed"}


def test_hmac_with_the_public_key_as_secret_is_401(
    client: FlaskClient, ehr: Ehr, caplog: pytest.LogCaptureFixture
) -> None:
    """The classic confusion: HS256 'signed' with the issuer's public key, which the server knows."""
    pem = ehr.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_secret = json.dumps(ehr.jwk).encode()
    for alg, digest in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
        for secret in (pem, jwk_secret):
            header, claims = {"alg": alg, "kid": ehr.kid, "typ": "JWT"}, ehr.claims(AUD)
            signing_input = unsigned(header, claims).rsplit(".", 1)[0]
            signature = hmac.new(secret, signing_input.encode(), digest).digest()
            _refused(_call(client, unsigned(header, claims, signature)))
    assert _reasons(caplog) == {"algorithm not allowed"}


def _reasons(caplog: pytest.LogCaptureFixture) -> set[str]:
    return {r.reason for r in caplog.records if r.getMessage() == "authentication refused"}  # type: ignore[attr-defined]


def test_key_of_another_type_than_the_alg_is_401(
    tmp_path: Path, ehr: Ehr, caplog: pytest.LogCaptureFixture
) -> None:
    """An RSA-signed token naming the kid of an EC key never reaches verification."""
    rsa_signer = Ehr(ehr.iss, "RS384", ehr.kid)
    client = _app(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks}).test_client()
    _refused(_call(client, rsa_signer.token(AUD)))
    assert _reasons(caplog) == {"key does not fit the algorithm"}


def test_wrong_audience_is_401(client: FlaskClient, ehr: Ehr) -> None:
    _refused(_call(client, ehr.token("https://cds.example.org/cds-services/another-service")))
    _refused(_call(client, ehr.token(["https://evil.example.org"])))
    _refused(_call(client, ehr.token(AUD + "/feedback")))


def test_expired_is_401(client: FlaskClient, ehr: Ehr) -> None:
    now = int(time.time())
    _refused(_call(client, ehr.token(AUD, exp=now - 120, iat=now - 400)))


def test_issued_in_the_future_is_401(client: FlaskClient, ehr: Ehr) -> None:
    _refused(_call(client, ehr.token(AUD, iat=int(time.time()) + 600, exp=int(time.time()) + 900)))


def test_not_yet_valid_is_401(client: FlaskClient, ehr: Ehr) -> None:
    _refused(_call(client, ehr.token(AUD, nbf=int(time.time()) + 600)))


def test_unknown_issuer_is_401(client: FlaskClient) -> None:
    stranger = Ehr("https://stranger.example.org", kid="ehr-key-1")
    _refused(_call(client, stranger.token(AUD)))


def test_rogue_key_with_a_known_kid_is_401(
    client: FlaskClient, ehr: Ehr, caplog: pytest.LogCaptureFixture
) -> None:
    rogue = Ehr(ehr.iss, "ES384", ehr.kid)  # same iss and kid, another private key
    _refused(_call(client, rogue.token(AUD)))
    assert _reasons(caplog) == {"invalid token: InvalidSignatureError"}


def test_issuer_key_mismatch_is_401(tmp_path: Path, ehr: Ehr, caplog: pytest.LogCaptureFixture) -> None:
    """Each issuer's token must be signed by that issuer's own key, even when both are trusted."""
    other = Ehr("https://other-ehr.example.org", kid="other-key")
    client = _app(
        tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks}, {"iss": other.iss, "jwks": other.jwks}
    ).test_client()
    assert _call(client, other.token(AUD)).status_code == 200
    _refused(_call(client, ehr.token(AUD, iss=other.iss)))  # ehr's key, other's name (kid unknown there)
    assert _reasons(caplog) == {"unknown kid"}
    same_kid = Ehr(other.iss, kid=ehr.kid)
    client2 = _app(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks}, {"iss": other.iss, "jwks": same_kid.jwks})
    _refused(_call(client2.test_client(), ehr.token(AUD, iss=other.iss)))  # same kid name, other key


@pytest.mark.parametrize("claim", ["jti", "exp", "iat", "iss", "aud"])
def test_missing_required_claim_is_401(client: FlaskClient, ehr: Ehr, claim: str) -> None:
    token = ehr.token(None) if claim == "aud" else ehr.token(AUD, **{claim: None})
    _refused(_call(client, token))


@pytest.mark.parametrize("jti", ["", 7, ["a"]])
def test_malformed_jti_is_401(client: FlaskClient, ehr: Ehr, jti: Any) -> None:
    _refused(_call(client, ehr.token(AUD, jti=jti)))


def test_missing_kid_is_401(client: FlaskClient, ehr: Ehr) -> None:
    token = ehr.token(AUD)
    import jwt as pyjwt

    claims = pyjwt.decode(token, options={"verify_signature": False})
    _refused(_call(client, pyjwt.encode(claims, ehr.private, algorithm="ES384", headers={"typ": "JWT"})))


def test_replayed_jti_is_401(client: FlaskClient, ehr: Ehr, caplog: pytest.LogCaptureFixture) -> None:
    token = ehr.token(AUD)
    assert _call(client, token).status_code == 200
    _refused(_call(client, token))
    _refused(_call(client, ehr.token(AUD, jti=json.loads(_payload(token))["jti"])))  # fresh token, same jti
    assert _reasons(caplog) == {"jti replayed"}


def _payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def test_replay_is_refused_across_workers_sharing_the_database(
    tmp_path: Path, ehr: Ehr, database_url: str
) -> None:
    """Two apps (as two gunicorn workers) on one database: a jti used on one is refused on the other."""
    issuer = {"iss": ehr.iss, "jwks": ehr.jwks}
    first = _app(tmp_path, issuer, database_url=database_url).test_client()
    second = _app(tmp_path, issuer, database_url=database_url).test_client()
    token = ehr.token(AUD)
    assert _call(first, token).status_code == 200
    _refused(_call(second, token))


def test_tenant_must_match_when_the_issuer_has_one(tmp_path: Path, ehr: Ehr) -> None:
    client = _app(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks, "tenant": "hospital-a"}).test_client()
    assert _call(client, ehr.token(AUD, tenant="hospital-a")).status_code == 200
    _refused(_call(client, ehr.token(AUD, tenant="hospital-b")))
    _refused(_call(client, ehr.token(AUD)))


@responses.activate
def test_jku_is_honoured_only_on_the_allowlist(tmp_path: Path, ehr: Ehr) -> None:
    allowed = "https://ehr.example.org/keys/current.json"
    responses.get(allowed, json=ehr.jwks)
    responses.get("https://evil.example.org/jwks.json", json=Ehr(ehr.iss, kid=ehr.kid).jwks)
    client = _app(tmp_path, {"iss": ehr.iss, "jku_allowlist": [allowed]}).test_client()
    assert _call(client, ehr.token(AUD, headers={"jku": allowed})).status_code == 200
    _refused(_call(client, ehr.token(AUD, headers={"jku": "https://evil.example.org/jwks.json"})))
    _refused(_call(client, ehr.token(AUD)))  # keys only via jku, and none given
    assert [c.request.url for c in responses.calls] == [allowed]


@responses.activate
def test_jwks_refresh_on_unknown_kid_is_rate_limited(tmp_path: Path, ehr: Ehr) -> None:
    rotated = Ehr(ehr.iss, kid="ehr-key-2")
    responses.get(JWKS_URL, json=ehr.jwks)
    client = _app(tmp_path, {"iss": ehr.iss, "jwks_url": JWKS_URL}, jwks_refresh_min_seconds=0).test_client()
    assert _call(client, ehr.token(AUD)).status_code == 200
    responses.replace(responses.GET, JWKS_URL, json={"keys": [ehr.jwk, rotated.jwk]})
    assert _call(client, rotated.token(AUD)).status_code == 200  # unknown kid -> refetched
    assert len(responses.calls) == 2

    slow = _app(tmp_path, {"iss": ehr.iss, "jwks_url": JWKS_URL}, jwks_refresh_min_seconds=60).test_client()
    assert _call(slow, ehr.token(AUD)).status_code == 200
    for i in range(5):
        _refused(_call(slow, Ehr(ehr.iss, kid=f"made-up-{i}").token(AUD)))
    assert len(responses.calls) == 3  # one fetch for the new app; made-up kids caused none


@responses.activate
def test_jwks_url_down_is_401_not_500(tmp_path: Path, ehr: Ehr) -> None:
    responses.get(JWKS_URL, status=503)
    client = _app(tmp_path, {"iss": ehr.iss, "jwks_url": JWKS_URL}).test_client()
    _refused(_call(client, ehr.token(AUD)))


def test_feedback_needs_a_token_for_the_feedback_url(client: FlaskClient, ehr: Ehr) -> None:
    url = REFERRAL_URL + "/feedback"
    card = _call(client, ehr.token(AUD)).get_json()["cards"][0]  # feedback must name an issued card
    body = {"feedback": [feedback_entry(card)]}
    _refused(_call(client, None, url, body))
    _refused(_call(client, ehr.token(AUD), url, body))
    assert _call(client, ehr.token(AUD + "/feedback"), url, body).status_code == 200


def test_discovery_and_pages_are_open_unless_configured(tmp_path: Path, ehr: Ehr) -> None:
    client = _app(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks}).test_client()
    for path in ("/cds-services", "/rationale", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    closed = _app(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks}, discovery_auth=True).test_client()
    _refused(closed.get("/cds-services"))
    token = ehr.token(BASE + "/cds-services")
    assert closed.get("/cds-services", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_unknown_paths_need_a_token_too(client: FlaskClient) -> None:
    _refused(client.get("/admin"))


def test_refusals_are_logged_with_a_reason_and_without_the_token(
    client: FlaskClient, ehr: Ehr, caplog: pytest.LogCaptureFixture
) -> None:
    token = ehr.token("https://wrong.example.org")
    with caplog.at_level(logging.INFO, logger="cds_service"):
        _refused(_call(client, token))
    (record,) = [r for r in caplog.records if r.getMessage() == "authentication refused"]
    assert record.reason == "invalid token: InvalidAudienceError"  # type: ignore[attr-defined]
    assert all(token not in r.getMessage() and token not in str(r.__dict__) for r in caplog.records)
    assert all(token.split(".")[2] not in str(r.__dict__) for r in caplog.records)


def test_jwt_is_the_default_and_needs_trusted_issuers() -> None:
    with pytest.raises(ValueError, match="CDS_TRUSTED_ISSUERS"):
        create_app(clock=lambda: AS_OF)


def test_a_broken_issuer_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jwks_url, jwks or jku_allowlist"):
        _app(tmp_path, {"iss": "https://x.example.org"})
    with pytest.raises(ValueError, match="https"):
        _app(tmp_path, {"iss": "https://x.example.org", "jwks_url": "http://x.example.org/jwks"})
