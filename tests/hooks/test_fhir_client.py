"""The FHIR client against mocked HTTP (`responses`): headers, paging, origins, caps, retries, budget."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from support.builders import AS_OF, PATIENT_ID, REFERRAL_URL, condition, hook_body, searchset, study

from cds_service.app import create_app
from cds_service.hooks.catalogue import REFERRAL
from cds_service.hooks.fhir_client import (
    FetchError,
    FetchLimits,
    FhirFetcher,
    check_base,
    render,
    retry_wait,
    with_page_size,
)
from cds_service.hooks.prefetch import Fetched, FetchFailed, FetchOutcome, FetchTask
from cds_service.hooks.request import HookRequest, parse_hook_request

BASE = "https://fhir.example.org/r4"
TOKEN = "SECRET-TOKEN-123"
CONDITIONS = re.compile(rf"{re.escape(BASE)}/Condition\?.*")
IMAGING = re.compile(rf"{re.escape(BASE)}/ImagingStudy\?.*")
PATIENT = f"{BASE}/Patient/{PATIENT_ID}"
FRACTURE = condition("fx", "M80.08XA")


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def fetch_body(*missing: str, **overrides: Any) -> dict[str, Any]:
    """A patient-view body with `missing` prefetch keys left out and a fhirServer to fetch them."""
    fetching = {"fhirServer": BASE, "fhirAuthorization": {"access_token": TOKEN}}
    body = hook_body([FRACTURE], **{**fetching, **overrides})
    for key in missing:
        del body["prefetch"][key]
    return body


def hook_request(*missing: str, **overrides: Any) -> HookRequest:
    return parse_hook_request(fetch_body(*missing, **overrides), REFERRAL)


def fetch_one(
    pool: ThreadPoolExecutor,
    task: FetchTask | None = None,
    *,
    budget: float = 2.0,
    sleeps: list[float] | None = None,
    **limits: Any,
) -> FetchOutcome:
    """Fetch the conditions key alone with the given limits; page size 0 keeps URLs as rendered."""
    fetcher = FhirFetcher(
        FetchLimits(**{"page_size": 0, **limits}),
        pool,
        sleep=(sleeps.append if sleeps is not None else time.sleep),
    )
    task = task or FetchTask(REFERRAL.prefetch["conditions"])
    outcome = fetcher.fetch(hook_request("conditions"), {"conditions": task}, time.monotonic() + budget)
    return outcome["conditions"]


def page(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle = searchset(resources)
    if next_url:
        bundle["link"] = [{"relation": "self", "url": "x"}, {"relation": "next", "url": next_url}]
    return bundle


def kind(outcome: FetchOutcome) -> str:
    assert isinstance(outcome, FetchFailed), outcome
    return outcome.kind


def post(body: dict[str, Any], **settings: Any) -> Any:
    return create_app(clock=lambda: AS_OF, auth="off", **settings).test_client().post(REFERRAL_URL, json=body)


# ---- rendering and URLs ---------------------------------------------------------------------


def test_render_fills_context_and_user_tokens_url_encoded() -> None:
    request = hook_request(context={"patientId": "p1", "userId": "Practitioner/dr 1", "encounterId": "e/1"})
    assert render("Condition?patient={{context.patientId}}", request) == "Condition?patient=p1"
    assert render("X?p={{ userPractitionerId }}&e={{context.encounterId}}", request) == "X?p=dr%201&e=e%2F1"


@pytest.mark.parametrize(
    "template", ["X?p={{userPatientId}}", "X?e={{context.encounterId}}", "X?q={{context}}", "X?{{nope}}"]
)
def test_render_refuses_tokens_the_request_cannot_fill(template: str) -> None:
    with pytest.raises(FetchError) as raised:
        render(template, hook_request())
    assert raised.value.kind == "unrenderable"


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("Condition?patient=p1", "Condition?patient=p1&_count=50"),
        ("Condition", "Condition?_count=50"),
        ("Condition?patient=p1&_count=5", "Condition?patient=p1&_count=5"),
        ("Patient/p1", "Patient/p1"),
    ],
)
def test_searches_ask_for_big_pages_reads_do_not(relative: str, expected: str) -> None:
    assert with_page_size(relative, 50) == expected
    assert with_page_size(relative, 0) == relative


@pytest.mark.parametrize(
    ("url", "allow_http", "failure"),
    [
        ("https://fhir.example.org/r4/", False, None),
        ("http://127.0.0.1:8080/fhir", True, None),
        ("http://fhir.example.org/r4", False, "not-https"),
        ("fhir.example.org/r4", True, "bad-fhir-server"),
        ("/r4", True, "bad-fhir-server"),
        ("ftp://fhir.example.org/r4", True, "bad-fhir-server"),
        ("https://user:pw@fhir.example.org/r4", True, "bad-fhir-server"),
        ("https://fhir.example.org:99999/r4", True, "bad-fhir-server"),
        ("https://fhir.example.org/r4?tenant=1", True, "bad-fhir-server"),
    ],
)
def test_fhir_server_must_be_an_absolute_https_url(url: str, allow_http: bool, failure: str | None) -> None:
    if failure is None:
        assert not check_base(url, allow_http).endswith("/")
        return
    with pytest.raises(FetchError) as raised:
        check_base(url, allow_http)
    assert raised.value.kind == failure


# ---- through the app: headers, parallelism, failures ---------------------------------------


def test_missing_keys_are_fetched_with_token_and_fhir_json(mocked: responses.RequestsMock) -> None:
    mocked.get(CONDITIONS, json=searchset([FRACTURE]))
    mocked.get(IMAGING, json=searchset([study("mri")]))
    mocked.get(PATIENT, json={"resourceType": "Patient", "id": PATIENT_ID})
    response = post(fetch_body("conditions", "imaging", "patient"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["cards"]) == 1
    assert len(mocked.calls) == 3
    for call in mocked.calls:
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.request.headers["Accept"] == "application/fhir+json"
    conditions_url = next(c.request.url for c in mocked.calls if "/Condition?" in str(c.request.url))
    assert conditions_url == f"{BASE}/Condition?patient={PATIENT_ID}&_count=200"


def test_keys_are_fetched_in_parallel(mocked: responses.RequestsMock) -> None:
    def slow(bundle: dict[str, Any]) -> Any:
        def reply(_: Any) -> tuple[int, dict[str, str], str]:
            time.sleep(0.3)
            return 200, {}, json.dumps(bundle)

        return reply

    mocked.add_callback(responses.GET, CONDITIONS, callback=slow(searchset([FRACTURE])))
    mocked.add_callback(responses.GET, IMAGING, callback=slow(searchset([])))
    mocked.add_callback(responses.GET, PATIENT, callback=slow({"resourceType": "Patient", "id": PATIENT_ID}))
    started = time.monotonic()
    assert post(fetch_body("conditions", "imaging", "patient")).status_code == 200
    assert time.monotonic() - started < 0.75  # three 0.3 s requests, not 0.9 s in a row


def test_no_token_still_fetches_without_authorization(mocked: responses.RequestsMock) -> None:
    mocked.get(CONDITIONS, json=searchset([FRACTURE]))
    body = fetch_body("conditions")
    del body["fhirAuthorization"]
    assert post(body).status_code == 200
    assert "Authorization" not in mocked.calls[0].request.headers


@pytest.mark.parametrize(
    ("reply", "failure"),
    [
        ({"status": 401}, "auth-refused"),
        ({"status": 403}, "auth-refused"),
        ({"status": 500}, "server-error"),
        ({"status": 400, "json": {"resourceType": "OperationOutcome"}}, "query-refused"),
        ({"status": 404}, "query-refused"),
        ({"body": "{not json"}, "bad-json"),
        ({"json": {"resourceType": "OperationOutcome", "issue": []}}, "server-error"),
        ({"json": ["not", "a", "resource"]}, "server-error"),
        ({"json": {"resourceType": "Bundle", "entry": {"a": 1}}}, "server-error"),
        ({"body": requests.ConnectionError("refused")}, "unreachable"),
        ({"body": requests.ReadTimeout("slow")}, "timeout"),
    ],
)
def test_conditions_that_cannot_be_had_are_412_naming_key_and_kind(
    mocked: responses.RequestsMock, reply: dict[str, Any], failure: str
) -> None:
    mocked.get(CONDITIONS, **reply)
    body = fetch_body("conditions", context={"patientId": "secret-patient-42", "userId": "Practitioner/1"})
    response = post(body)
    assert response.status_code == 412
    text = response.get_data(as_text=True)
    diagnostics = response.get_json()["issue"][0]["diagnostics"]
    assert diagnostics == f"required data could not be had: conditions ({failure})"
    assert TOKEN not in text
    assert "secret-patient-42" not in text


def test_optional_imaging_failing_is_answered_and_said(mocked: responses.RequestsMock) -> None:
    mocked.get(IMAGING, status=503)
    response = post(fetch_body("imaging"))
    card = response.get_json()["cards"][0]
    assert card["extension"]["vertebral-augmentation-cds/finding"]["dataUnavailable"] == ["ImagingStudy"]
    assert "Imaging data were unavailable" in card["detail"]


def test_logs_hold_neither_token_nor_patient_id_nor_url(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.get(re.compile(rf"{re.escape(BASE)}/Condition\?.*"), json=searchset([]))
    mocked.get(re.compile(rf"{re.escape(BASE)}/ImagingStudy\?.*"), status=401)
    body = fetch_body("conditions", "imaging", context={"patientId": "secret-patient-42"})
    assert post(body).status_code == 200
    assert any(getattr(r, "kind", None) == "auth-refused" for r in caplog.records)
    for record in caplog.records:
        logged = repr(record.__dict__)
        assert TOKEN not in logged
        assert "secret-patient-42" not in logged
        assert "fhir.example.org" not in logged


def test_absent_patient_read_is_no_data_not_a_failure(mocked: responses.RequestsMock) -> None:
    mocked.get(PATIENT, status=404, json={"resourceType": "OperationOutcome"})
    card = post(fetch_body("patient")).get_json()["cards"][0]
    assert card["extension"]["vertebral-augmentation-cds/finding"].get("dataUnavailable", []) == []


@pytest.mark.parametrize(
    ("url", "settings", "failure"),
    [
        ("http://fhir.example.org/r4", {}, "not-https"),
        ("not a url", {"allow_http_fhir": True}, "bad-fhir-server"),
    ],
)
def test_unusable_fhir_server_is_412_and_never_called(
    mocked: responses.RequestsMock, url: str, settings: dict[str, Any], failure: str
) -> None:
    response = post(fetch_body("conditions", fhirServer=url), **settings)
    assert response.status_code == 412
    assert f"conditions ({failure})" in response.get_json()["issue"][0]["diagnostics"]
    assert len(mocked.calls) == 0


def test_plain_http_is_fetched_when_allowed(mocked: responses.RequestsMock) -> None:
    mocked.get(re.compile(r"http://127\.0\.0\.1:9999/fhir/Condition\?.*"), json=searchset([FRACTURE]))
    response = post(fetch_body("conditions", fhirServer="http://127.0.0.1:9999/fhir"), allow_http_fhir=True)
    assert response.status_code == 200


def test_no_fhir_server_is_412(mocked: responses.RequestsMock) -> None:
    body = fetch_body("conditions")
    del body["fhirServer"]
    assert "conditions (no-fhir-server)" in post(body).get_json()["issue"][0]["diagnostics"]


# ---- paging, origins, loops, caps ----------------------------------------------------------


def test_same_origin_next_links_are_followed_over_three_pages(
    mocked: responses.RequestsMock, pool: ThreadPoolExecutor
) -> None:
    mocked.get(f"{BASE}/Condition?patient={PATIENT_ID}", json=page([condition("a", "I10")], "Condition?p=2"))
    mocked.get(f"{BASE}/Condition?p=2", json=page([condition("b", "I10")], f"{BASE}/Condition?p=3"))
    mocked.get(f"{BASE}/Condition?p=3", json=page([condition("c", "I10")]))
    outcome = fetch_one(pool)
    assert isinstance(outcome, Fetched)
    assert [r["id"] for r in outcome.resources] == ["a", "b", "c"]
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in mocked.calls)


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example.org/r4/Condition?p=2",
        "http://fhir.example.org/r4/Condition?p=2",  # same host, plain http
        "https://fhir.example.org:8443/r4/Condition?p=2",  # same host, other port
        "https://fhir.example.org.evil.example/r4/Condition?p=2",
        "https://user:pw@fhir.example.org/r4/Condition?p=2",
    ],
)
def test_next_link_to_another_origin_is_never_followed(
    mocked: responses.RequestsMock, pool: ThreadPoolExecutor, foreign: str
) -> None:
    mocked.get(f"{BASE}/Condition?patient={PATIENT_ID}", json=page([FRACTURE], foreign))
    assert kind(fetch_one(pool)) == "off-origin"
    assert len(mocked.calls) == 1


def test_next_link_loop_is_detected(mocked: responses.RequestsMock, pool: ThreadPoolExecutor) -> None:
    mocked.get(f"{BASE}/Condition?patient={PATIENT_ID}", json=page([FRACTURE], "Condition?p=2"))
    mocked.get(f"{BASE}/Condition?p=2", json=page([FRACTURE], f"{BASE}/Condition?patient={PATIENT_ID}"))
    assert kind(fetch_one(pool)) == "link-loop"
    assert len(mocked.calls) == 2


def test_page_cap(mocked: responses.RequestsMock, pool: ThreadPoolExecutor) -> None:
    pages = iter(range(1, 100))
    mocked.add_callback(
        responses.GET,
        re.compile(rf"{re.escape(BASE)}/.*"),
        callback=lambda _: (200, {}, json.dumps(page([], f"p?{next(pages)}"))),
    )
    assert kind(fetch_one(pool, max_pages=3)) == "too-large"
    assert len(mocked.calls) == 3


def test_resource_cap_counts_what_prefetch_already_gave(
    mocked: responses.RequestsMock, pool: ThreadPoolExecutor
) -> None:
    mocked.get(f"{BASE}/Condition?p=2", json=page([condition(f"c{i}", "I10") for i in range(3)]))
    task = FetchTask(REFERRAL.prefetch["conditions"], next_url="Condition?p=2", have=2)
    assert kind(fetch_one(pool, task, max_resources=4)) == "too-large"
    assert isinstance(fetch_one(pool, task, max_resources=5), Fetched)


def test_response_byte_cap(mocked: responses.RequestsMock, pool: ThreadPoolExecutor) -> None:
    big = page([condition(f"c{i}", "I10") for i in range(100)])
    mocked.get(f"{BASE}/Condition?patient={PATIENT_ID}", json=big)
    assert kind(fetch_one(pool, max_response_bytes=4096)) == "too-large"


def test_same_origin_redirect_is_followed_with_the_token(
    mocked: responses.RequestsMock, pool: ThreadPoolExecutor
) -> None:
    mocked.get(
        f"{BASE}/Condition?patient={PATIENT_ID}", status=302, headers={"Location": "/r4/Condition?moved=1"}
    )
    mocked.get(f"{BASE}/Condition?moved=1", json=page([FRACTURE]))
    assert isinstance(fetch_one(pool), Fetched)
    assert mocked.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_redirect_to_another_host_is_refused(
    mocked: responses.RequestsMock, pool: ThreadPoolExecutor
) -> None:
    mocked.get(
        f"{BASE}/Condition?patient={PATIENT_ID}",
        status=307,
        headers={"Location": "https://evil.example.org/steal"},
    )
    mocked.get("https://evil.example.org/steal", json=page([FRACTURE]))
    assert kind(fetch_one(pool)) == "off-origin"
    assert [str(c.request.url) for c in mocked.calls] == [f"{BASE}/Condition?patient={PATIENT_ID}"]


def test_redirect_loop_is_cut(mocked: responses.RequestsMock, pool: ThreadPoolExecutor) -> None:
    mocked.get(
        f"{BASE}/Condition?patient={PATIENT_ID}",
        status=302,
        headers={"Location": f"{BASE}/Condition?patient={PATIENT_ID}"},
    )
    assert kind(fetch_one(pool)) == "link-loop"


# ---- paged prefetch Bundles ----------------------------------------------------------------


def test_paged_prefetch_bundle_is_continued_from_fhir_server(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/Condition?p=2", json=page([FRACTURE]))
    body = fetch_body()
    body["prefetch"]["conditions"] = page([condition("noise", "I10")], f"{BASE}/Condition?p=2")
    assert len(post(body).get_json()["cards"]) == 1
    assert len(mocked.calls) == 1


def test_paged_prefetch_bundle_without_token_uses_what_is_there(mocked: responses.RequestsMock) -> None:
    body = fetch_body()
    del body["fhirAuthorization"]
    body["prefetch"]["conditions"] = page([FRACTURE], f"{BASE}/Condition?p=2")
    assert len(post(body).get_json()["cards"]) == 1
    assert len(mocked.calls) == 0


def test_paged_prefetch_bundle_with_foreign_next_link_is_412(mocked: responses.RequestsMock) -> None:
    body = fetch_body()
    body["prefetch"]["conditions"] = page([FRACTURE], "https://evil.example.org/Condition?p=2")
    response = post(body)
    assert response.status_code == 412
    assert "conditions (off-origin)" in response.get_json()["issue"][0]["diagnostics"]
    assert len(mocked.calls) == 0


# ---- retries and the budget ----------------------------------------------------------------


def test_503_is_retried_after_retry_after(mocked: responses.RequestsMock, pool: ThreadPoolExecutor) -> None:
    url = f"{BASE}/Condition?patient={PATIENT_ID}"
    mocked.get(url, status=503, headers={"Retry-After": "1"})
    mocked.get(url, json=page([FRACTURE]))
    sleeps: list[float] = []
    assert isinstance(fetch_one(pool, sleeps=sleeps), Fetched)
    assert sleeps == [1.0]


def test_429_without_retry_after_backs_off_briefly(
    mocked: responses.RequestsMock, pool: ThreadPoolExecutor
) -> None:
    url = f"{BASE}/Condition?patient={PATIENT_ID}"
    mocked.get(url, status=429)
    mocked.get(url, status=429)
    mocked.get(url, json=page([FRACTURE]))
    sleeps: list[float] = []
    assert isinstance(fetch_one(pool, sleeps=sleeps), Fetched)
    assert len(sleeps) == 2
    assert all(0 < s <= 0.2 for s in sleeps)


def test_retry_after_beyond_the_budget_gives_up_at_once(
    mocked: responses.RequestsMock, pool: ThreadPoolExecutor
) -> None:
    mocked.get(f"{BASE}/Condition?patient={PATIENT_ID}", status=429, headers={"Retry-After": "30"})
    sleeps: list[float] = []
    assert kind(fetch_one(pool, sleeps=sleeps)) == "throttled"
    assert sleeps == []
    assert len(mocked.calls) == 1


def test_retries_stop_after_a_few(mocked: responses.RequestsMock, pool: ThreadPoolExecutor) -> None:
    mocked.get(f"{BASE}/Condition?patient={PATIENT_ID}", status=503, headers={"Retry-After": "0"})
    assert kind(fetch_one(pool, sleeps=[])) == "server-error"
    assert len(mocked.calls) == 4


def test_retry_after_as_http_date() -> None:
    response = requests.Response()
    response.headers["Retry-After"] = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    assert 3 < retry_wait(response, 0) <= 5
    response.headers["Retry-After"] = "garbage"
    assert retry_wait(response, 0) <= 0.1


def test_a_slow_server_is_cut_at_the_budget(mocked: responses.RequestsMock, pool: ThreadPoolExecutor) -> None:
    def slow(_: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(1.0)
        return 200, {}, json.dumps(page([FRACTURE]))

    mocked.add_callback(responses.GET, re.compile(rf"{re.escape(BASE)}/Condition\?.*"), callback=slow)
    started = time.monotonic()
    assert kind(fetch_one(pool, budget=0.2)) == "timeout"
    assert time.monotonic() - started < 0.5


def test_the_budget_covers_the_whole_hook_call(mocked: responses.RequestsMock) -> None:
    def slow(_: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(1.0)
        return 200, {}, json.dumps(page([FRACTURE]))

    mocked.add_callback(responses.GET, CONDITIONS, callback=slow)
    started = time.monotonic()
    response = post(fetch_body("conditions"), fhir_budget_seconds=0.3)
    assert time.monotonic() - started < 0.8
    assert "conditions (timeout)" in response.get_json()["issue"][0]["diagnostics"]
