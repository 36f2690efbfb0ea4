"""Every scenario in fhir_fixtures/ through the HTTP API at its as-of date, against its expected outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from support.builders import SCENARIOS, assert_no_empty, sorted_lists, with_defaults
from support.fixture_calls import answer


def test_there_are_at_least_30_scenarios() -> None:
    assert len(SCENARIOS) >= 30


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_scenario(folder: Path) -> None:
    fixture, found = answer(folder)
    meta = fixture.meta
    expected = meta["expected"]
    cards = found["cards"]
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
    for card in answer(folder)[1]["cards"]:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                if "resource" in action:
                    resource = action["resource"]
                    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
                    _assert_no_repeated_references(resource)


def _assert_no_repeated_references(value: object) -> None:
    """A list of References in an emitted resource names each target once (the EHR would show the
    same report twice as the Condition's evidence)."""
    if isinstance(value, dict):
        for item in value.values():
            _assert_no_repeated_references(item)
    elif isinstance(value, list):
        refs = [item["reference"] for item in value if isinstance(item, dict) and "reference" in item]
        assert len(refs) == len(set(refs)), refs
        for item in value:
            _assert_no_repeated_references(item)
