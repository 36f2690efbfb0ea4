"""Every scenario in fhir_fixtures/ through the HTTP API at its as-of date, against its expected outcome."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from support.builders import SCENARIOS, sorted_lists

from cds_service.app import create_app
from cds_service.offline import hook_request_for, patient_ids, read_scenario
from cds_service.services import SERVICES


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
    found = card["extension"]["vertebral-augmentation-cds/finding"]
    assert card["indicator"] == expected["indicator"]
    assert found["recommendation"] == expected["recommendation"]
    assert ("suggestions" in card) is expected["suggestion"]
    assert found["asOf"] == meta["asOf"]
    for key in ("fractures", "imaging", "contraindications"):
        # a member with no value is omitted on both sides (CDS Hooks use of JSON): absent = none
        assert sorted_lists(found.get(key)) == sorted_lists(expected.get(key)), key
    if "deletes" in expected:
        deletes = [
            a["resourceId"]
            for s in card.get("suggestions", [])
            for a in s["actions"]
            if a["type"] == "delete"
        ]
        assert sorted(deletes) == sorted(expected["deletes"])
    for phrase in expected.get("detailContains", []):
        assert phrase in card["detail"]
