"""§1a as properties over every fixture: garbage in elements the rules do not use never changes a
decision; a needed element made unreadable is always said on the card."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builders import SCENARIOS
from support.fixture_calls import client_on, fixture_call

from cds_service.core.record import read_elements
from cds_service.demo.scenario import hook_request_for, read_scenario

FINDING = "vertebral-augmentation-cds/finding"


def _answer(folder: Path, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fixture's call with `resources` in place of its own (same patient, hook and context)."""
    call = fixture_call(folder)
    body = hook_request_for(resources, call.service, call.patient_id, context=call.scenario.context)
    response = client_on(call.as_of, record_cards=False).post(call.url, json=body)
    assert response.status_code == 200
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def _decision(cards: list[dict[str, Any]]) -> list[Any]:
    """What was decided: every card's finding, indicator and suggestion actions, without uuids."""
    out = []
    for card in cards:
        actions = [
            {k: v for k, v in a.items() if k != "uuid"}
            for s in card.get("suggestions", [])
            for a in s["actions"]
        ]
        out.append((card["indicator"], card["extension"][FINDING], actions, card["detail"]))
    return out


json_garbage = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
_ZONE = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:\d{2})$")


def _strip_zones(value: Any) -> Any:
    """Zone-less dateTimes (HIE feeds): the calendar date as written stays."""
    if isinstance(value, dict):
        return {k: _strip_zones(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_zones(v) for v in value]
    if isinstance(value, str):
        return _ZONE.sub(r"\1", value)
    return value


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    folder=st.sampled_from(SCENARIOS),
    garbage=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "meta",
                    "text",
                    "note",
                    "identifier",
                    "category",
                    "encounter",
                    "extension",
                    "x-unknown",
                    "severity",
                    "evidence",
                    "stage",
                    "onsetString",
                ]
            ),
            json_garbage,
        ),
        min_size=1,
        max_size=4,
    ),
    zones=st.booleans(),
)
def test_garbage_in_unused_elements_never_changes_the_decision(
    folder: Path, garbage: list[tuple[str, Any]], zones: bool
) -> None:
    resources = read_scenario(folder).resources
    before = _decision(_answer(folder, resources))
    changed = []
    for resource in resources:
        spoiled = copy.deepcopy(resource)
        used = read_elements(str(resource.get("resourceType")))
        for element, value in garbage:
            if element not in used:
                spoiled[element] = value
        changed.append(_strip_zones(spoiled) if zones else spoiled)
    assert _decision(_answer(folder, changed)) == before


def _with_card() -> list[Path]:
    return [f for f in SCENARIOS if json.loads((f / "scenario.json").read_text())["expected"]["cards"] == 1]


@pytest.mark.parametrize("folder", _with_card(), ids=lambda p: p.name)
def test_a_needed_element_made_unreadable_is_said_on_the_card(folder: Path) -> None:
    """A copy of the record's first fracture (or contraindication) Condition whose onset is not a
    date: the card still comes (the original stands) and says a Condition could not be read."""
    resources = read_scenario(folder).resources
    cards = _answer(folder, resources)
    found = cards[0]["extension"][FINDING]
    refs = [e for f in found.get("fractures", []) for e in f["evidence"]] + [
        e for c in found.get("contraindications", []) for e in c["evidence"]
    ]
    conditions = [r for r in resources if f"Condition/{r.get('id')}" in refs]
    if not conditions:
        pytest.skip("no Condition among the evidence (imaging-reason only)")
    broken = {**copy.deepcopy(conditions[0]), "id": "unreadable-copy", "onsetDateTime": "not a date"}
    broken.pop("onsetPeriod", None)
    after = _answer(folder, [*resources, broken])
    assert len(after) == 1
    finding = after[0]["extension"][FINDING]
    assert finding["unreadable"]["Condition"] >= 1
    assert "could not be read" in after[0]["detail"]
    assert finding["recommendation"] == found["recommendation"]
