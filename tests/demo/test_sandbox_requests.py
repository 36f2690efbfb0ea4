"""What the CDS Hooks Sandbox sends, over real HTTP to a gunicorn process: prefetch keys left out
(read from fhirServer instead), draft orders whose `code.coding` is `[{}]`, `reasonCode: []`. Every
answer is 200 and valid CDS Hooks 2.0.1."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from support.builders import condition, hook_body, order_sign_body
from support.cds_validator import check_response
from support.fhir_server import FhirTestServer
from support.live_server import LiveServer

REFERRAL = "/cds-services/vertebral-augmentation-referral"
ORDER_SIGN = "/cds-services/vertebral-augmentation-order-sign"
ORDER_SELECT = "/cds-services/vertebral-augmentation-order-select"
# The live server evaluates at today's date: a fracture diagnosed ten days ago is recent.
RECENT = (datetime.now(UTC).date() - timedelta(days=10)).isoformat()
# A draft order as the Sandbox's order-sign tab drafts it before a code is picked.
UNCODED_ORDER = {
    "resourceType": "ServiceRequest",
    "id": "sandbox-draft",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
    "code": {"coding": [{}]},
    "reasonCode": [],
}
UNCODED_MEDICATION = {
    "resourceType": "MedicationRequest",
    "id": "sandbox-med",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
    "medicationCodeableConcept": {"coding": [{}]},
    "reasonCode": [],
}


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    server = LiveServer({"CDS_AUTH": "off", "CDS_ALLOW_HTTP_FHIR": "true"}).start()
    yield server
    server.stop()


def _post(live: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(live.url + path, json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    check_response(answer)
    return answer


def test_omitted_prefetch_keys_are_read_from_the_fhir_server(
    live: LiveServer, fhir_server: FhirTestServer
) -> None:
    body = hook_body([condition("fx", "M80.08XA", onset=RECENT, bodySite=[{"text": "L1"}])])
    body["prefetch"] = {"conditions": body["prefetch"]["conditions"]}  # the Sandbox sent only this key
    body["fhirServer"] = fhir_server.base_url  # and no fhirAuthorization (an open sandbox server)
    (card,) = _post(live, REFERRAL, body)["cards"]
    assert card["extension"]["vertebral-augmentation-cds/finding"]["recommendation"] == "refer"
    fetched = {r["path"].split("?")[0].split("/")[3] for r in fhir_server.requests()}
    assert {"ImagingStudy", "Procedure", "AllergyIntolerance"} <= fetched
    assert "Condition" not in fetched  # prefetched: not read again


def test_uncoded_draft_orders_and_empty_reason_codes_are_answered(live: LiveServer) -> None:
    body = order_sign_body(hook_body([condition("fx", "M80.08XA", onset=RECENT)]))
    body["context"]["draftOrders"]["entry"] = [{"resource": UNCODED_ORDER}, {"resource": UNCODED_MEDICATION}]
    assert _post(live, ORDER_SIGN, body) == {"cards": []}  # nothing to check: no augmentation order


def test_an_augmentation_order_beside_uncoded_ones_is_still_checked(live: LiveServer) -> None:
    body = order_sign_body()  # no fracture on record: the kyphoplasty order is not supported
    kyphoplasty = body["context"]["draftOrders"]["entry"][0]["resource"]
    kyphoplasty["reasonCode"] = []
    body["context"]["draftOrders"]["entry"] += [{"resource": UNCODED_ORDER}, {"resource": UNCODED_MEDICATION}]
    (card,) = _post(live, ORDER_SIGN, copy.deepcopy(body))["cards"]
    assert card["extension"]["vertebral-augmentation-cds/finding"]["recommendation"] == "order-not-supported"
    (suggestion,) = card["suggestions"]
    assert [a["resourceId"] for a in suggestion["actions"]] == ["ServiceRequest/o1"]  # only the augmentation
    body["hook"] = "order-select"
    body["context"]["selections"] = ["ServiceRequest/o1", "ServiceRequest/sandbox-draft"]
    (card,) = _post(live, ORDER_SELECT, body)["cards"]
    assert card["selectionBehavior"] == "at-most-one"
