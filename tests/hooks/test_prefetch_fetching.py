"""Fetching against a real FHIR server (Medplum's engine, tests/fhir_server) loaded with fhir_fixtures/:
the same cards fetched as prefetched, paging, the budget, and every way the server can fail."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from support.builders import SCENARIOS, sorted_lists
from support.fhir_server import FhirTestServer
from support.fixture_calls import Clock, fixture_call

from cds_service.app import create_app
from cds_service.hooks.catalogue import REFERRAL, SERVICES

TOKEN = "SECRET-TOKEN-xyz"
FX01 = next(p for p in SCENARIOS if p.name.startswith("01-"))  # 5 Conditions, 1 ImagingStudy: refer
FX09 = next(p for p in SCENARIOS if p.name.startswith("09-"))  # 7 Conditions: refer


CLOCK = Clock()
APP = create_app(clock=CLOCK, allow_http_fhir=True, auth="off")


def _scenario(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scenario's metadata and its full-prefetch request; sets the clock to its asOf."""
    call = fixture_call(folder)
    CLOCK.today = call.as_of
    return call.meta, call.body


def _fetching(body: dict[str, Any], server: FhirTestServer, token: str | None = TOKEN) -> dict[str, Any]:
    """The same call with no prefetch at all: the service must read everything from the server."""
    fetching = {**body, "prefetch": {}, "fhirServer": server.base_url}
    if token:
        fetching["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer"}
    return fetching


def _post(body: dict[str, Any], app: Flask = APP) -> Any:
    service = next(s for s in SERVICES.values() if s.hook == body["hook"])
    return app.test_client().post(f"/cds-services/{service.id}", json=body)


def _decisions(response: Any) -> list[tuple[str, Any]]:
    """What must not change between prefetch and fetch: indicator and finding (uuids always do)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    return [
        (card["indicator"], sorted_lists(card["extension"]["vertebral-augmentation-cds/finding"]))
        for card in response.get_json()["cards"]
    ]


def _failure(response: Any) -> str:
    assert response.status_code == 412, response.get_data(as_text=True)
    diagnostics: str = response.get_json()["issue"][0]["diagnostics"]
    return diagnostics


def _fhir_requests(server: FhirTestServer, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in server.requests() if r["path"].startswith(f"/fhir/R4/{resource_type}")]


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_fetched_gives_the_same_cards_as_prefetched(fhir_server: FhirTestServer, folder: Path) -> None:
    # Medplum stores every fixture resource as written (meta aside), the deliberately invalid ones
    # of 11-abatement-age-string-boolean and 20-malformed-resources-skipped included: the server
    # refuses to start if a PUT fails, and a read-back comparison found no difference. So no
    # scenario or resource needs excluding here.
    meta, body = _scenario(folder)
    prefetched = _decisions(_post(body))
    assert len(prefetched) == meta["expected"]["cards"]
    assert _decisions(_post(_fetching(body, fhir_server))) == prefetched
    requested = fhir_server.requests()
    fetched_types = {r["path"].split("?")[0].split("/")[3] for r in requested}
    if meta.get("hook", "patient-view") != "patient-view" and not fetched_types:
        # no augmentation order in scope: the service answers without reading the record at all
        assert meta["expected"]["cards"] == 0
    else:
        assert fetched_types == {q.resource_type for q in REFERRAL.prefetch.values()}
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in requested)


def test_search_results_are_paged_over_three_pages_and_read_in_full(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX09)
    fhir_server.control(pageSize=2)
    app = create_app(
        clock=CLOCK, allow_http_fhir=True, auth="off", fhir_page_size=0
    )  # the server's page size
    assert _decisions(_post(_fetching(body, fhir_server), app)) == _decisions(_post(body))
    pages = _fhir_requests(fhir_server, "Condition")
    assert len(pages) == 4  # 7 Conditions, 2 a page
    assert all(p["authorization"] == f"Bearer {TOKEN}" for p in pages)


def test_our_page_size_is_sent_and_respected(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX09)
    app = create_app(clock=CLOCK, allow_http_fhir=True, auth="off", fhir_page_size=3)
    assert _decisions(_post(_fetching(body, fhir_server), app)) == _decisions(_post(body))
    pages = _fhir_requests(fhir_server, "Condition")
    assert len(pages) == 3  # 7 Conditions, 3 a page
    assert all("_count=3" in p["path"] for p in pages)


def test_a_paged_prefetch_bundle_is_continued_on_the_server(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX09)
    first = requests.get(f"{fhir_server.base_url}/Condition?patient=s09-patient&_count=2", timeout=10).json()
    assert any(link["relation"] == "next" for link in first["link"])
    fhir_server.reset()
    paged = {**body, "fhirServer": fhir_server.base_url, "fhirAuthorization": {"access_token": TOKEN}}
    paged["prefetch"] = {**body["prefetch"], "conditions": first}
    assert _decisions(_post(paged)) == _decisions(_post(body))
    assert len(_fhir_requests(fhir_server, "Condition")) == 3  # pages 2 to 4 only


def test_a_slow_server_is_answered_within_the_budget(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX01)
    fhir_server.control(delayMs=300)
    started = time.monotonic()
    assert _decisions(_post(_fetching(body, fhir_server))) == _decisions(_post(body))
    assert time.monotonic() - started < 1.0  # three types in parallel: one 300 ms round trip, not three


def test_a_server_slower_than_the_budget_is_cut_off(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX01)
    fhir_server.control(delayMs=3000)
    app = create_app(clock=CLOCK, allow_http_fhir=True, auth="off", fhir_budget_seconds=0.5)
    started = time.monotonic()
    response = _post(_fetching(body, fhir_server), app)
    assert time.monotonic() - started < 1.0
    assert "conditions (timeout)" in _failure(response)


def test_server_down_is_412_unreachable(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX01)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        down = {**_fetching(body, fhir_server), "fhirServer": f"http://127.0.0.1:{port}/fhir/R4"}
        assert "conditions (unreachable)" in _failure(_post(down))


def test_token_refused_is_412_auth_refused_and_never_echoed(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX01)
    fhir_server.control(requireToken="the-right-token")
    response = _post(_fetching(body, fhir_server))
    assert "conditions (auth-refused)" in _failure(response)
    assert TOKEN not in response.get_data(as_text=True)
    assert "s01-patient" not in response.get_data(as_text=True)
    right = _post(_fetching(body, fhir_server, token="the-right-token"))
    assert _decisions(right) == _decisions(_post(body))


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"status": 500}, "server-error"),
        ({"status": 503, "retryAfter": 30}, "server-error"),
        ({"status": 429, "retryAfter": 30}, "throttled"),
        ({"garbage": True}, "bad-json"),
        ({"nextLoop": True}, "link-loop"),
    ],
)
def test_server_faults_are_412_with_their_kind(
    fhir_server: FhirTestServer, fault: dict[str, Any], kind: str
) -> None:
    _, body = _scenario(FX01)
    fhir_server.control(**fault)
    started = time.monotonic()
    assert f"conditions ({kind})" in _failure(_post(_fetching(body, fhir_server)))
    assert time.monotonic() - started < 1.5  # a Retry-After past the budget is not waited for


def test_a_next_link_to_another_host_is_never_followed(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX01)
    # Same server, other origin (host name differs): had the client followed the link, the server's
    # request log would show a second Condition request, with or without the token.
    foreign = fhir_server.base_url.replace("127.0.0.1", "localhost") + "/Condition?patient=s01-patient"
    fhir_server.control(nextForeign=foreign)
    assert "conditions (off-origin)" in _failure(_post(_fetching(body, fhir_server)))
    assert len(_fhir_requests(fhir_server, "Condition")) == 1


def test_a_brief_503_is_retried_within_the_budget(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX01)
    fhir_server.control(status=503, retryAfter=0, times=1)
    assert _decisions(_post(_fetching(body, fhir_server))) == _decisions(_post(body))


def test_optional_imaging_failing_still_answers_and_says_so(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX01)
    partial = _fetching(body, fhir_server)
    partial["prefetch"] = {k: v for k, v in body["prefetch"].items() if k != "imaging"}
    fhir_server.control(status=500)
    (card,) = _post(partial).get_json()["cards"]
    assert card["extension"]["vertebral-augmentation-cds/finding"]["dataUnavailable"] == ["ImagingStudy"]
    assert "Imaging data were unavailable" in card["detail"]


def test_plain_http_fhir_server_is_refused_unless_allowed(fhir_server: FhirTestServer) -> None:
    _, body = _scenario(FX01)
    strict = create_app(clock=CLOCK, auth="off")
    assert "conditions (not-https)" in _failure(_post(_fetching(body, fhir_server), strict))
    assert fhir_server.requests() == []
