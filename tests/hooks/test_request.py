"""Hostile input: wrong JSON types anywhere, deep nesting, huge strings, odd content types and
unicode. Every answer is 400 (OperationOutcome) or a skipped resource; never 500, never a hang."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.builders import (
    REFERRAL_URL,
    condition,
    feedback_entry,
    hook_body,
    order_sign_body,
    searchset,
    study,
)

ORDER_SIGN_URL = "/cds-services/vertebral-augmentation-order-sign"
WRONG = [None, 7, -1.5, True, "x", [], {}, [None], {"x": 1}, 1e308, "9999-99-99", "\u202e\ufeff\u0000"]


def _rich_body() -> dict[str, Any]:
    """A call touching every reader: fracture, study, procedure, medication, allergy, draft order."""
    body = hook_body(
        [
            condition(
                "fx",
                "M80.08XA",
                bodySite=[{"text": "L1 vertebra"}],
                clinicalStatus={"coding": [{"code": "active"}]},
            )
        ],
        [study("s1", series=[{"uid": "1", "modality": {"code": "MR"}, "bodySite": {"code": "122496007"}}])],
        procedures=[
            {
                "resourceType": "Procedure",
                "id": "pr",
                "status": "completed",
                "subject": {"reference": "Patient/p1"},
                "code": {"text": "vertebroplasty"},
                "performedDateTime": "2026-11-02",
            }
        ],
        medicationrequests=[
            {
                "resourceType": "MedicationRequest",
                "id": "m",
                "status": "active",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {
                    "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "11289"}]
                },
            }
        ],
        allergies=[
            {
                "resourceType": "AllergyIntolerance",
                "id": "a",
                "patient": {"reference": "Patient/p1"},
                "code": {"text": "PMMA bone cement"},
                "reaction": [{"substance": {"text": "methyl methacrylate"}}],
            }
        ],
    )
    return body


def _order_body() -> dict[str, Any]:
    return order_sign_body(_rich_body(), cpt="22513")


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replaced(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _post(client: FlaskClient, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(("url", "build"), [(REFERRAL_URL, _rich_body), (ORDER_SIGN_URL, _order_body)])
def test_wrong_types_anywhere_never_make_a_500(client: FlaskClient, url: str, build: Any) -> None:
    body = build()
    paths = list(_paths(body))
    assert len(paths) > 80
    statuses = set()
    for path in paths:
        for value in WRONG:
            response = _post(client, url, _replaced(body, path, value))
            assert response.status_code in (200, 400, 412), (path, value, response.get_data(as_text=True))
            if response.status_code != 200:
                assert response.get_json()["resourceType"] == "OperationOutcome"
            statuses.add(response.status_code)
    assert statuses == {200, 400, 412}


def test_wrong_types_anywhere_in_feedback_are_400_never_500(client: FlaskClient) -> None:
    body = {"feedback": [feedback_entry("c1"), feedback_entry("c2", "overridden")]}
    for path in _paths(body):
        for value in WRONG:
            response = _post(client, REFERRAL_URL + "/feedback", _replaced(body, path, value))
            assert response.status_code in (200, 400), (path, value)


@pytest.mark.parametrize(("depth", "status"), [(500, 200), (1000, 200), (5000, 400), (100_000, 400)])
def test_deep_nesting_is_answered_or_400_quickly(client: FlaskClient, depth: int, status: int) -> None:
    """Up to orjson's limit (1024 levels) the resource is read or skipped; deeper bodies are 400."""
    started = time.perf_counter()
    response = client.post(REFERRAL_URL, data=_deep_raw(depth), content_type="application/json")
    assert response.status_code == status
    assert time.perf_counter() - started < 2


def _deep_raw(depth: int) -> str:
    """Built as text (json.dumps itself would recurse too deep): nesting in an extension and a code."""
    body = json.dumps(
        hook_body(
            [
                condition("fx", "M80.08XA", extension=["HOLE"]),
                {"resourceType": "Condition", "id": "c2", "code": "HOLE"},
            ]
        )
    )
    return body.replace('"HOLE"', "[" * depth + "]" * depth)


def test_huge_strings_are_answered_quickly(client: FlaskClient) -> None:
    fracture = condition("fx", "M80.08XA")
    fracture["code"]["text"] = "x" * 4_000_000
    fracture["code"]["coding"][0]["display"] = "é" * 1_000_000
    started = time.perf_counter()
    response = _post(client, REFERRAL_URL, hook_body([fracture]))
    assert response.status_code == 200
    assert time.perf_counter() - started < 3


def test_many_resources_and_long_arrays_do_not_hang(client: FlaskClient) -> None:
    body = hook_body([condition("fx", "M80.08XA", bodySite=[{"text": "L1"}] * 20_000)])
    body["prefetch"]["imaging"] = searchset([study(f"s{i}") for i in range(2_000)])
    started = time.perf_counter()
    assert _post(client, REFERRAL_URL, body).status_code == 200
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "text/html",
    ],
)
def test_wrong_content_types_are_400(client: FlaskClient, content_type: str) -> None:
    for url in (REFERRAL_URL, REFERRAL_URL + "/feedback"):
        response = client.post(url, data=json.dumps(hook_body()), content_type=content_type)
        assert response.status_code == 400
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"hook": "patient-view", "hookInstance": "\\ud800"}',  # lone surrogate
        b'{"hook": "patient-view\xff"}',  # invalid UTF-8
        b"\xef\xbb\xbf{}",  # BOM before the object
        b'{"hook": "patient-view", "hook": 5}',
        b"NaN",
        b'{"a": 1e999999}',
        b"\x00" * 100,
    ],
)
def test_unicode_and_json_oddities_are_400(client: FlaskClient, raw: bytes) -> None:
    for url in (REFERRAL_URL, REFERRAL_URL + "/feedback"):
        response = client.post(url, data=raw, content_type="application/json")
        assert response.status_code == 400, raw
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "patient_id", ["p1\u202e", "p\u0000", "ｐ１", "p1\n", "𝔭1", "a" * 65, "../p1", "p1 OR 1=1"]
)
def test_odd_patient_ids_are_400_and_not_echoed(client: FlaskClient, patient_id: str) -> None:
    body = hook_body()
    body["context"]["patientId"] = patient_id
    response = _post(client, REFERRAL_URL, body)
    assert response.status_code == 400
    assert patient_id not in response.get_data(as_text=True)


def test_unicode_in_resources_is_read_or_skipped(client: FlaskClient) -> None:
    fracture = condition("fx", "M80.08XA")
    fracture["code"]["text"] = "Fracture\u202e\u200b\ufeff of L1 \U0001f9b4 \u0301"
    noise = condition("n1", "M80.08XA\u0000", onset="2026-11-01\u202e")
    response = _post(client, REFERRAL_URL, hook_body([fracture, noise]))
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1
