"""Real-world shapes: every resource of the types we read, in the official FHIR R4 examples (npm
`hl7.fhir.r4.examples`, pinned in tests/fhir_server/package.json), goes through the evaluator
without an exception. Skipping a resource is fine; crashing on one is not."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from support.builders import AS_OF, searchset
from support.fhir_server import EXAMPLES_DIR, ensure_node_modules

from cds_service.core.decision import decide_referral
from cds_service.core.record import read_record
from cds_service.core.terminology import Terminology
from cds_service.hooks.catalogue import REFERRAL

TYPES = ("Condition", "ImagingStudy", "Patient", "Procedure", "MedicationRequest", "AllergyIntolerance")
# Evaluation days: today's fixtures' day, and one in the years the examples were written.
DAYS = (AS_OF, date(2013, 4, 2))
_PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})$")


def _collect(value: Any, found: list[dict[str, Any]]) -> None:
    """Resources of TYPES anywhere in a file: top level, Bundle entries, contained, parameters."""
    if isinstance(value, dict):
        if value.get("resourceType") in TYPES:
            found.append(value)
        for inner in value.values():
            _collect(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _collect(inner, found)


@pytest.fixture(scope="module")
def examples() -> list[dict[str, Any]]:
    ensure_node_modules()
    found: list[dict[str, Any]] = []
    wanted = [f'"{t}"'.encode() for t in TYPES]
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        raw = path.read_bytes()
        if path.name not in ("package.json", "ig-r4.json") and any(w in raw for w in wanted):
            _collect(orjson.loads(raw), found)  # parse only files that can hold one (~190 MB in all)
    return found


def test_the_examples_hold_every_type(examples: list[dict[str, Any]]) -> None:
    counts = {t: sum(r["resourceType"] == t for r in examples) for t in TYPES}
    assert all(counts.values()), counts
    assert len(examples) > 100


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_each_example_alone_is_evaluated_without_error(
    examples: list[dict[str, Any]], terminology: Terminology, today: date
) -> None:
    for resource in examples:
        record = read_record({resource["resourceType"]: [resource]}, terminology, today)
        decide_referral(record, terminology, today, 60)


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_all_examples_as_one_record_are_evaluated_without_error(
    examples: list[dict[str, Any]], terminology: Terminology, today: date
) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in examples:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    record = read_record(by_type, terminology, today)
    decide_referral(record, terminology, today, 60)


def _patient_of(resource: dict[str, Any]) -> str:
    if resource["resourceType"] == "Patient":
        return str(resource.get("id", "example"))
    for key in ("subject", "patient"):
        ref = resource.get(key)
        match = _PATIENT_REF.search(ref.get("reference", "")) if isinstance(ref, dict) else None
        if match:
            return match.group(1)
    return "example"


def test_a_handful_as_prefetch_through_the_endpoint(
    examples: list[dict[str, Any]], client: FlaskClient
) -> None:
    keys = {query.resource_type: key for key, query in REFERRAL.prefetch.items()}
    handful = [r for t in keys for r in [e for e in examples if e["resourceType"] == t][:5]]
    assert len(handful) >= 10
    for resource in handful:
        key = keys[resource["resourceType"]]
        prefetch: dict[str, Any] = {k: None for k in REFERRAL.prefetch}
        prefetch[key] = resource if key == "patient" else searchset([resource])
        body = {
            "hook": "patient-view",
            "hookInstance": "examples",
            "context": {"userId": "Practitioner/example", "patientId": _patient_of(resource)},
            "prefetch": prefetch,
        }
        response = client.post(f"/cds-services/{REFERRAL.id}", json=body)
        assert response.status_code == 200, (resource.get("id"), response.get_data(as_text=True))
        assert isinstance(response.get_json()["cards"], list)
