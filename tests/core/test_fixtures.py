"""Every scenario in fhir_fixtures/ through the HTTP API at its as-of date, against its expected outcome."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from support.builders import SCENARIOS, assert_no_empty, sorted_lists, with_defaults

from cds_service.app import create_app
from cds_service.demo.scenario import hook_request_for, patient_ids, read_scenario
from cds_service.hooks.catalogue import SERVICES


def test_there_are_at_least_30_scenarios() -> None:
    assert len(SCENARIOS) >= 30


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_scenario(folder: Path) -> None:
    meta = json.loads((folder / "scenario.json").read_text())
    expected = meta["expected"]
    scenario = read_scenario(folder)
    as_of = date.fromisoformat(meta["asOf"])
    service = next(s for s in SERVICES.values() if s.hook == scenario.hook)
    (patient_id,) = patient_ids(scenario.resources)
    body = hook_request_for(scenario.resources, service, patient_id, context=scenario.context)
    response = (
        create_app(clock=lambda: as_of, auth="off")
        .test_client()
        .post(f"/cds-services/{service.id}", json=body)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    assert len(cards) == expected["cards"], meta["description"]
    if not cards:
        return
    (card,) = cards
    assert_no_empty(card)
    found = with_defaults(card["extension"]["vertebral-augmentation-cds/finding"])
    assert card["indicator"] == expected["indicator"]
    assert found["recommendation"] == expected["recommendation"]
    assert ("suggestions" in card) is expected["suggestion"]
    assert found["asOf"] == meta["asOf"]
    for key in ("fractures", "imaging", "contraindications"):
        assert sorted_lists(found[key]) == sorted_lists(with_defaults(expected)[key]), key
    if "deletes" in expected:
        deletes = [
            a["resourceId"]
            for s in card.get("suggestions", [])
            for a in s["actions"]
            if a["type"] == "delete"
        ]
        assert sorted(deletes) == sorted(expected["deletes"])
    assert found.get("unreadable", {}) == expected.get("unreadable", {})
    created = {
        a["resource"]["resourceType"]
        for s in card.get("suggestions", [])
        for a in s["actions"]
        if a["type"] == "create"
    }
    if "referralSuggestion" in expected:
        assert ("ServiceRequest" in created) is expected["referralSuggestion"]
    if "problemListSuggestion" in expected:
        assert ("Condition" in created) is expected["problemListSuggestion"]
    if "selectionBehavior" in expected:
        assert card.get("selectionBehavior") == expected["selectionBehavior"]
    for phrase in expected.get("detailContains", []):
        assert phrase in card["detail"]


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_every_emitted_resource_is_valid_fhir_r4(folder: Path) -> None:
    """What the service emits (draft ServiceRequests and any other suggested resource) validates
    against the R4B models: strictness where it serves, on output, never on evidence (§1a)."""
    meta = json.loads((folder / "scenario.json").read_text())
    scenario = read_scenario(folder)
    service = next(s for s in SERVICES.values() if s.hook == scenario.hook)
    (patient_id,) = patient_ids(scenario.resources)
    body = hook_request_for(scenario.resources, service, patient_id, context=scenario.context)
    as_of = date.fromisoformat(meta["asOf"])
    answer = (
        create_app(clock=lambda: as_of, auth="off")
        .test_client()
        .post(f"/cds-services/{service.id}", json=body)
    )
    for card in answer.get_json()["cards"]:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                if "resource" in action:
                    resource = action["resource"]
                    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
