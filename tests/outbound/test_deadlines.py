"""Where the service may send the caller's access token: public https fhirServers only (loopback for
local sandboxes with CDS_ALLOW_HTTP_FHIR, named private networks by configuration), and, when the
issuer registers some, only that issuer's fhirServer origins. Forbidden addresses are refused
before any packet is sent (checked by watching the socket layer)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import responses
import urllib3.util.connection
from support.builders import AS_OF, REFERRAL_URL, condition, hook_body
from support.hostile_http import HostileServer, answer
from support.tokens import BASE, Ehr, issuer_file

from cds_service.app import create_app
from cds_service.hooks.catalogue import REFERRAL
from cds_service.outbound.deadlines import address_policy


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection attempt urllib3 makes (refused here, so nothing leaves the machine)."""
    seen: list[Any] = []

    def refuse(address: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(address)
        raise ConnectionRefusedError("test: no connections")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", refuse)
    monkeypatch.setattr("urllib3.connection.connection.create_connection", refuse)
    return seen


def _no_prefetch(fhir_server: str) -> dict[str, Any]:
    body = hook_body(fhirServer=fhir_server, fhirAuthorization={"access_token": "t0ken"})
    body["prefetch"] = {}
    return body


@pytest.mark.parametrize(
    "fhir_server",
    [
        "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://10.0.0.1/fhir",
        "https://192.168.1.20/fhir",
        "https://172.16.0.5/fhir",
        "https://100.100.100.200/fhir",  # shared address space (another cloud's metadata)
        "https://[fd00:ec2::254]/fhir",
        "https://[::ffff:10.0.0.1]/fhir",
        "https://127.0.0.1/fhir",  # loopback over https, without CDS_ALLOW_HTTP_FHIR
        "https://0.0.0.0/fhir",
    ],
)
def test_forbidden_addresses_are_refused_before_connecting(fhir_server: str, connects: list[Any]) -> None:
    client = create_app(clock=lambda: AS_OF, auth="off").test_client()
    response = client.post(REFERRAL_URL, json=_no_prefetch(fhir_server))
    assert response.status_code == 412
    assert "conditions (forbidden-address)" in response.get_json()["issue"][0]["diagnostics"]
    assert connects == []  # before: contacted with the caller's access token


def test_a_configured_private_network_is_allowed(connects: list[Any]) -> None:
    client = create_app(clock=lambda: AS_OF, auth="off", fhir_allowed_networks="10.0.0.0/8").test_client()
    response = client.post(REFERRAL_URL, json=_no_prefetch("https://10.0.0.1/fhir"))
    assert response.status_code == 412
    assert "conditions (unreachable)" in response.get_json()["issue"][0]["diagnostics"]
    assert connects  # it was tried (and refused by the test's socket layer)


def test_loopback_http_is_allowed_for_local_sandboxes() -> None:
    bundle = b'{"resourceType":"Bundle","type":"searchset","entry":[]}'
    with HostileServer(answer(bundle)) as local:
        client = create_app(clock=lambda: AS_OF, auth="off", allow_http_fhir=True).test_client()
        assert client.post(REFERRAL_URL, json=_no_prefetch(local.url)).status_code == 200
        assert local.requests == len(REFERRAL.prefetch)  # one search per prefetch key
        off = create_app(clock=lambda: AS_OF, auth="off").test_client()
        assert "not-https" in off.post(REFERRAL_URL, json=_no_prefetch(local.url)).get_data(as_text=True)


def test_policy_decisions() -> None:
    strict = address_policy(allow_loopback=False)
    assert strict("93.184.216.34")
    assert strict("2606:2800:220:1:248:1893:25c8:1946")
    for refused in (
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "169.254.169.254",
        "224.0.0.1",
        "not-an-ip",
        "fe80::1%eth0",
    ):
        assert not strict(refused), refused
    assert address_policy(allow_loopback=True)("127.0.0.1")


@responses.activate
def test_an_issuer_bound_to_its_fhir_servers_cannot_send_the_service_elsewhere(tmp_path: Path) -> None:
    ehr = Ehr()
    registered = "https://fhir.ehr.example.org"
    app = create_app(
        clock=lambda: AS_OF,
        auth="jwt",
        trusted_issuers=issuer_file(
            tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks, "fhir_servers": [registered]}
        ),
        public_base_url=BASE,
        database_url=f"sqlite:///{tmp_path}/bound.sqlite",
    )
    client = app.test_client()

    def call(fhir_server: str) -> Any:
        token = ehr.token(BASE + REFERRAL_URL, iat=int(time.time()))
        body = hook_body([condition("fx", "M80.08XA")], fhirServer=fhir_server)
        del body["prefetch"]["conditions"]
        return client.post(REFERRAL_URL, json=body, headers={"Authorization": f"Bearer {token}"})

    refused = call("https://other.example.org/fhir")
    assert refused.status_code == 412
    assert "conditions (not-issuer-origin)" in refused.get_json()["issue"][0]["diagnostics"]
    assert len(responses.calls) == 0
    responses.get(f"{registered}/r4/Condition", json={"resourceType": "Bundle", "type": "searchset"})
    assert call(f"{registered}/r4").status_code == 200
