"""hooks/catalogue: each service carries the handler that answers it, and the route only dispatches."""

from __future__ import annotations

import dataclasses

from support.builders import PATIENT_ID

from cds_service.app import create_app
from cds_service.hooks.catalogue import ORDER_SELECT, ORDER_SIGN, REFERRAL, SERVICES
from cds_service.hooks.handlers import HookAnswer, HookCall, answer_order, answer_patient_view


def test_every_hook_has_its_handler() -> None:
    assert {s.id: s.handler for s in SERVICES.values()} == {
        REFERRAL.id: answer_patient_view,
        ORDER_SELECT.id: answer_order,
        ORDER_SIGN.id: answer_order,
    }


def test_the_route_calls_the_service_handler_with_the_parsed_call() -> None:
    """A new service is a ServiceDefinition with a handler: no route change, no hook-name test."""
    seen: list[HookCall] = []

    def handler(call: HookCall) -> HookAnswer:
        seen.append(call)
        return HookAnswer(None, None, {"orders": 0})

    custom = dataclasses.replace(REFERRAL, id="custom-view", handler=handler)
    app = create_app(auth="off")
    app.extensions["cds"] = dataclasses.replace(app.extensions["cds"], services={custom.id: custom})
    body = {"hook": "patient-view", "hookInstance": "h-1", "context": {"patientId": PATIENT_ID}}
    answer = app.test_client().post("/cds-services/custom-view", json=body)
    assert (answer.status_code, answer.get_json()) == (200, {"cards": []})
    (call,) = seen
    assert (call.service.id, call.request.patient_id, call.request.hook_instance) == (
        "custom-view",
        PATIENT_ID,
        "h-1",
    )
    assert call.rationale_url == "http://localhost/rationale"
