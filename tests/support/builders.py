"""Small builders for FHIR resources and CDS Hooks calls used across the tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

AS_OF = date(2026, 11, 23)
REFERRAL_URL = "/cds-services/vertebral-augmentation-referral"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
PATIENT_ID = "p1"
ROOT = Path(__file__).resolve().parents[2]
"""The repository: tests sit at different depths under tests/, so none builds this path itself."""
FIXTURES = ROOT / "fhir_fixtures"
TEST_DATA = ROOT / "tests" / "data"
Call = Callable[..., Any]
"""The `call` fixture's type (tests/conftest.py): POST a patient-view call, get its JSON answer."""
SCENARIOS = sorted(p for p in FIXTURES.iterdir() if (p / "scenario.json").exists())


def condition(
    rid: str,
    code: str,
    system: str = ICD,
    *,
    onset: str | None = "2026-11-01",
    patient: str = PATIENT_ID,
    **extra: Any,
) -> dict[str, Any]:
    """A Condition with one coding; keyword arguments add or override fields."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid,
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": system, "code": code}]},
    }
    if onset:
        resource["onsetDateTime"] = onset
    resource.update(extra)
    return resource


def study(rid: str, *, started: str = "2026-11-03", modality: str = "MR", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": rid,
        "status": "available",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "started": started,
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality}],
        "description": "MRI lumbar spine",
    }
    resource.update(extra)
    return resource


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def hook_body(
    conditions: list[dict[str, Any]] | None = None,
    studies: list[dict[str, Any]] | None = None,
    *,
    patient: dict[str, Any] | None = None,
    procedures: list[dict[str, Any]] | None = None,
    servicerequests: list[dict[str, Any]] | None = None,
    medicationrequests: list[dict[str, Any]] | None = None,
    medicationstatements: list[dict[str, Any]] | None = None,
    allergies: list[dict[str, Any]] | None = None,
    reports: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A patient-view call with every prefetch key present (empty searchsets unless given)."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": PATIENT_ID},
        "prefetch": {
            "patient": patient or {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1950-01-01"},
            "conditions": searchset(conditions or []),
            "imaging": searchset(studies or []),
            "procedures": searchset(procedures or []),
            "servicerequests": searchset(servicerequests or []),
            "medicationrequests": searchset(medicationrequests or []),
            "medicationstatements": searchset(medicationstatements or []),
            "allergies": searchset(allergies or []),
            "reports": searchset(reports or []),
        },
    }
    body.update(overrides)
    return body


def finding(answer: dict[str, Any]) -> dict[str, Any]:
    """The card's finding as sent (members with no value omitted, checked)."""
    cards = answer["cards"]
    assert len(cards) == 1
    found: dict[str, Any] = cards[0]["extension"]["vertebral-augmentation-cds/finding"]
    assert_no_empty(found)
    return found


def assert_no_empty(value: Any, where: str = "$") -> None:
    """CDS Hooks "use of JSON": no null, empty string, empty array or empty object."""
    assert value is not None, where
    assert value not in ("", [], {}), where
    if isinstance(value, dict):
        for key, item in value.items():
            assert_no_empty(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_no_empty(item, f"{where}[{index}]")


def with_defaults(found: dict[str, Any]) -> dict[str, Any]:
    """A finding as the wire omits it, with the omitted members back as None / empty."""
    imaging = {"acuityConfirmed": False, "studies": [], **found.get("imaging", {})}
    fractures = [{"level": None, "region": None, **f} for f in found.get("fractures", [])]
    return {
        "contraindications": [],
        "dataUnavailable": [],
        **found,
        "fractures": fractures,
        "imaging": imaging,
    }


def sorted_lists(value: Any) -> Any:
    """Lists compare without regard to order (fhir_fixtures/README.md)."""
    if isinstance(value, dict):
        return {k: sorted_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((sorted_lists(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def feedback_entry(card: str | dict[str, Any], outcome: str = "accepted", **extra: Any) -> dict[str, Any]:
    """One CDS Hooks feedback entry on a card the service answered with (or on a bare uuid): accepted
    ones name the card's first suggestion, overridden ones its first override reason."""
    if isinstance(card, dict):
        card_uuid = card["uuid"]
        suggestion = card["suggestions"][0]["uuid"] if card.get("suggestions") else "no-suggestion"
        reason = dict(card["overrideReasons"][0])
    else:
        card_uuid, suggestion = card, "s-" + card
        reason = {"system": "http://example.org/override", "code": "patient-declined", "display": "Declined"}
    entry: dict[str, Any] = {
        "card": card_uuid,
        "outcome": outcome,
        "outcomeTimestamp": "2026-11-23T10:00:00Z",
    }
    if outcome == "accepted":
        entry["acceptedSuggestions"] = [{"id": suggestion}]
    else:
        entry["overrideReason"] = {"reason": reason, "userComment": "discussed"}
    entry.update(extra)
    return entry


def order_sign_body(base: dict[str, Any] | None = None, cpt: str = "22514") -> dict[str, Any]:
    """A patient-view call (by default an empty record) turned into an order-sign call drafting one
    vertebral augmentation ServiceRequest (CPT 22510-22515)."""
    body = base if base is not None else hook_body([])
    body["hook"] = "order-sign"
    order = {
        "resourceType": "ServiceRequest",
        "id": "o1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": cpt}]},
    }
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": order}]}
    return body
