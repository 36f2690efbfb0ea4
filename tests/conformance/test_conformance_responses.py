"""Every response the service gives for the fixtures is valid CDS Hooks 2.0.1 (the strict validator
in tests/support/cds_validator.py): every scenario of fhir_fixtures/ through every service, with full
prefetch and with no prefetch at all (read from the real FHIR test server), plus discovery."""

from __future__ import annotations

import copy
import json
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from support.builders import SCENARIOS
from support.cds_validator import CHECKED, check_discovery, check_response
from support.fhir_server import FhirTestServer
from support.fixture_calls import Clock

from cds_service.app import create_app
from cds_service.demo.scenario import hook_request_for, patient_ids, read_scenario
from cds_service.hooks.catalogue import SERVICES, ServiceDefinition

SAMPLE_ORDER: dict[str, Any] = json.loads(
    (files("cds_service.demo") / "sample-draft-order.json").read_text(encoding="utf-8")
)


CLOCK = Clock()
APP = create_app(clock=CLOCK, allow_http_fhir=True, auth="off")


def _context_for(
    service: ServiceDefinition, scenario_context: dict[str, Any], patient_id: str
) -> dict[str, Any]:
    """The scenario's own hook context where it fits the service; otherwise the context this service's
    hook needs (a drafted kyphoplasty order for the patient, selected for order-select)."""
    if service.hook == "patient-view":
        return {}
    bundle = scenario_context.get("draftOrders")
    if bundle is None:
        order = copy.deepcopy(SAMPLE_ORDER)
        order["subject"] = {"reference": f"Patient/{patient_id}"}
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
    context: dict[str, Any] = {"draftOrders": bundle}
    if service.hook == "order-select":
        context["selections"] = scenario_context.get("selections") or [
            f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]
        ]
    return context


def _bodies(folder: Path) -> list[tuple[ServiceDefinition, dict[str, Any]]]:
    meta = json.loads((folder / "scenario.json").read_text())
    CLOCK.today = date.fromisoformat(meta["asOf"])
    scenario = read_scenario(folder)
    (patient_id,) = patient_ids(scenario.resources)
    return [
        (
            service,
            hook_request_for(
                scenario.resources,
                service,
                patient_id,
                context=_context_for(service, dict(scenario.context), patient_id),
            ),
        )
        for service in SERVICES.values()
    ]


def _answer(service: ServiceDefinition, body: dict[str, Any]) -> dict[str, Any]:
    response = APP.test_client().post(f"/cds-services/{service.id}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    answer: dict[str, Any] = response.get_json()
    return answer


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_every_service_answers_the_prefetched_scenario_validly(folder: Path) -> None:
    for service, body in _bodies(folder):
        check_response(_answer(service, body))


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_every_service_answers_the_fetched_scenario_validly(
    fhir_server: FhirTestServer, folder: Path
) -> None:
    for service, body in _bodies(folder):
        fetching = {
            **body,
            "prefetch": {},
            "fhirServer": fhir_server.base_url,
            "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 300},
        }
        check_response(_answer(service, fetching))
    fetched = {r["path"].split("?")[0].split("/")[3] for r in fhir_server.requests()}
    assert "Condition" in fetched  # the record really came from the server


def test_discovery_is_valid() -> None:
    check_discovery(APP.test_client().get("/cds-services").get_json())


def test_the_runs_above_checked_cards_of_every_kind() -> None:
    """Not vacuous: the fixtures make the services answer with cards (the order services too)."""
    before = CHECKED.copy()
    for folder in (f for f in SCENARIOS if f.name[:3] in ("01-", "53-", "76-", "91-")):
        for service, body in _bodies(folder):
            answer = _answer(service, body)
            check_response(answer)
            if folder.name.startswith("91-") and service.hook != "patient-view":
                (card,) = answer["cards"]  # order-not-supported, with the delete suggestion
                assert card["selectionBehavior"] == "at-most-one"
                assert card["source"]["topic"]["code"] == "vertebral-augmentation-order-check"
    assert CHECKED["card"] - before["card"] >= 6  # 01 referral; 53 on all three; 91 on both order hooks
