"""order-select and order-sign through the HTTP API (api-contract.md, Order hooks)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.builders import PATIENT_ID, condition, hook_body

SELECT_URL = "/cds-services/vertebral-augmentation-order-select"
SIGN_URL = "/cds-services/vertebral-augmentation-order-sign"
CPT = "http://www.ama-assn.org/go/cpt"
FINDING = "vertebral-augmentation-cds/finding"
FRACTURE = condition("fx", "M80.08XA", onset="2026-11-01", bodySite=[{"text": "L1"}])


def order(rid: str, code: dict[str, Any], resource_type: str = "ServiceRequest") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": resource_type,
        "id": rid,
        "status": "draft",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": code,
    }
    if resource_type == "ServiceRequest":
        resource["intent"] = "order"
    else:
        resource["status"] = "preparation"
    return resource


KYPHOPLASTY = order("kp", {"coding": [{"system": CPT, "code": "22514", "display": "Kyphoplasty, lumbar"}]})
MRI = order(
    "mri", {"coding": [{"system": "http://loinc.org", "code": "24968-0"}], "text": "MRI lumbar spine"}
)


def order_body(
    hook: str,
    orders: list[dict[str, Any]],
    conditions: list[dict[str, Any]],
    selections: list[str] | None = None,
    bundle_type: str = "collection",
) -> dict[str, Any]:
    body = hook_body(conditions)
    body["hook"] = hook
    body["hookInstance"] = str(uuid.uuid4())
    body["context"]["draftOrders"] = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [{"resource": o} for o in orders],
    }
    if hook == "order-select":
        body["context"]["selections"] = (
            selections if selections is not None else [f"{o['resourceType']}/{o['id']}" for o in orders]
        )
    return body


def post(client: FlaskClient, hook: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    url = SELECT_URL if hook == "order-select" else SIGN_URL
    response = client.post(url, json=order_body(hook, *args, **kwargs))
    assert response.status_code == 200, response.get_data(as_text=True)
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


HOOKS = ["order-select", "order-sign"]


def test_both_services_are_discovered(client: FlaskClient) -> None:
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    assert services["vertebral-augmentation-order-select"]["hook"] == "order-select"
    assert services["vertebral-augmentation-order-sign"]["hook"] == "order-sign"
    for sid in ("vertebral-augmentation-order-select", "vertebral-augmentation-order-sign"):
        assert services[sid]["prefetch"]["conditions"] == "Condition?patient={{context.patientId}}"


@pytest.mark.parametrize("hook", HOOKS)
def test_no_recent_fracture_is_order_not_supported_with_remove_suggestion(
    client: FlaskClient, hook: str
) -> None:
    (card,) = post(client, hook, [KYPHOPLASTY], [condition("op", "M81.0")])
    assert card["indicator"] == "warning"
    assert card["extension"][FINDING]["recommendation"] == "order-not-supported"
    assert "not a preventive treatment" in card["detail"]
    (suggestion,) = card["suggestions"]
    assert suggestion["actions"] == [
        {"type": "delete", "description": suggestion["label"], "resourceId": "ServiceRequest/kp"}
    ]
    displays = [r["display"] for r in card["overrideReasons"]]
    assert "Recent fracture documented outside this record" in displays
    assert not any("ontraindication" in d for d in displays)  # this card names no contraindication


@pytest.mark.parametrize("hook", HOOKS)
def test_old_fracture_says_its_age(client: FlaskClient, hook: str) -> None:
    old = condition("old", "M80.08XA", onset="2026-05-01", bodySite=[{"text": "T12"}])
    (card,) = post(client, hook, [KYPHOPLASTY], [old])
    assert card["extension"][FINDING]["recommendation"] == "order-not-supported"
    assert "206 days old" in card["summary"]
    assert "T12" in card["detail"]
    assert "2026-05-01" in card["detail"]


@pytest.mark.parametrize("hook", HOOKS)
def test_absolute_contraindication_is_critical(client: FlaskClient, hook: str) -> None:
    (card,) = post(client, hook, [KYPHOPLASTY], [FRACTURE, condition("sep", "A41.9", onset="2026-11-15")])
    assert card["indicator"] == "critical"
    found = card["extension"][FINDING]
    assert found["recommendation"] == "contraindicated"
    assert found["contraindications"] == [
        {"code": "infection", "kind": "absolute", "evidence": ["Condition/sep"]}
    ]
    assert card["suggestions"][0]["actions"][0]["type"] == "delete"


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("code", ["D68.9", "M51.16", "G95.20"])
def test_relative_or_not_advised_is_order_caution(client: FlaskClient, hook: str, code: str) -> None:
    (card,) = post(client, hook, [KYPHOPLASTY], [FRACTURE, condition("ci", code)])
    assert card["indicator"] == "warning"
    assert card["extension"][FINDING]["recommendation"] == "order-caution"
    assert "suggestions" not in card
    assert "Address these before the procedure" in card["detail"]


@pytest.mark.parametrize("hook", HOOKS)
def test_recent_fracture_and_nothing_against_it_is_silent(client: FlaskClient, hook: str) -> None:
    assert post(client, hook, [KYPHOPLASTY], [FRACTURE]) == []


@pytest.mark.parametrize("hook", HOOKS)
def test_prior_procedure_does_not_silence_order_check(client: FlaskClient, hook: str) -> None:
    body = order_body(hook, [KYPHOPLASTY], [FRACTURE, condition("ci", "D68.9")])
    body["prefetch"]["procedures"]["entry"] = [
        {
            "resource": {
                "resourceType": "Procedure",
                "id": "done",
                "status": "completed",
                "subject": {"reference": f"Patient/{PATIENT_ID}"},
                "code": {"text": "Kyphoplasty"},
                "performedDateTime": "2026-11-10",
            }
        }
    ]
    url = SELECT_URL if hook == "order-select" else SIGN_URL
    (card,) = client.post(url, json=body).get_json()["cards"]
    assert card["extension"][FINDING]["recommendation"] == "order-caution"


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize(
    "draft",
    [
        order("v", {"text": "Percutaneous vertebroplasty T12"}),
        order("p", {"coding": [{"system": CPT, "code": "22513"}]}, resource_type="Procedure"),
        order("a", {"coding": [{"system": "urn:local", "code": "VA", "display": "Vertebral augmentation"}]}),
    ],
)
def test_augmentation_orders_recognised_by_code_or_text(
    client: FlaskClient, hook: str, draft: dict[str, Any]
) -> None:
    (card,) = post(client, hook, [draft], [])
    assert card["extension"][FINDING]["recommendation"] == "order-not-supported"


@pytest.mark.parametrize("hook", HOOKS)
def test_other_orders_get_no_cards(client: FlaskClient, hook: str) -> None:
    assert post(client, hook, [MRI], []) == []


def test_our_own_referral_suggestion_is_not_an_augmentation_order(client: FlaskClient) -> None:
    referral = {
        "resourceType": "ServiceRequest",
        "id": "ref",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {
            "coding": [
                {
                    "system": "urn:vertebral-augmentation-cds:referral",
                    "code": "vertebral-augmentation-evaluation",
                }
            ],
            "text": "Vertebral augmentation (kyphoplasty / vertebroplasty) evaluation",
        },
    }
    assert post(client, "order-sign", [referral], [condition("ci", "D68.9")]) == []


def test_order_select_looks_only_at_selections(client: FlaskClient) -> None:
    assert post(client, "order-select", [KYPHOPLASTY, MRI], [], selections=["ServiceRequest/mri"]) == []
    (card,) = post(client, "order-select", [KYPHOPLASTY, MRI], [], selections=["ServiceRequest/kp"])
    assert card["suggestions"][0]["actions"][0]["resourceId"] == "ServiceRequest/kp"


def test_order_sign_looks_at_every_order_one_card(client: FlaskClient) -> None:
    second = order("vp", {"text": "Vertebroplasty L2"})
    cards = post(client, "order-sign", [MRI, KYPHOPLASTY, second], [], bundle_type="transaction")
    assert len(cards) == 1
    assert [a["resourceId"] for a in cards[0]["suggestions"][0]["actions"]] == [
        "ServiceRequest/kp",
        "ServiceRequest/vp",
    ]


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c: c.pop("draftOrders"), "draftOrders"),
        (lambda c: c.update(draftOrders=[{"resourceType": "ServiceRequest"}]), "draftOrders"),
        (lambda c: c.update(draftOrders={"resourceType": "ServiceRequest", "id": "x"}), "draftOrders"),
        (lambda c: c.update(draftOrders={"resourceType": "Bundle", "type": "collection"}), "no entries"),
        (lambda c: c.update(draftOrders={"resourceType": "Bundle", "entry": []}), "no entries"),
        (
            lambda c: c.update(draftOrders={"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}),
            "without a resource",
        ),
    ],
)
def test_malformed_draft_orders_are_400(client: FlaskClient, hook: str, mutate: Any, needle: str) -> None:
    body = order_body(hook, [KYPHOPLASTY], [FRACTURE])
    mutate(body["context"])
    url = SELECT_URL if hook == "order-select" else SIGN_URL
    response = client.post(url, json=body)
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert needle in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "selections", [None, [], "ServiceRequest/kp", [3], ["ServiceRequest/nothing"], ["Procedure/kp"]]
)
def test_bad_selections_are_400(client: FlaskClient, selections: Any) -> None:
    body = order_body("order-select", [KYPHOPLASTY], [FRACTURE])
    if selections is None:
        del body["context"]["selections"]
    else:
        body["context"]["selections"] = selections
    response = client.post(SELECT_URL, json=body)
    assert response.status_code == 400
    assert "selections" in response.get_json()["issue"][0]["diagnostics"]


def test_order_hook_with_wrong_hook_name_is_400(client: FlaskClient) -> None:
    body = order_body("order-sign", [KYPHOPLASTY], [FRACTURE])
    assert client.post(SELECT_URL, json=body).status_code == 400


def test_order_hook_needs_conditions_like_patient_view(client: FlaskClient) -> None:
    body = order_body("order-sign", [KYPHOPLASTY], [FRACTURE])
    del body["prefetch"]["conditions"]
    assert client.post(SIGN_URL, json=body).status_code == 412


def test_other_orders_need_no_prefetch(client: FlaskClient) -> None:
    body = order_body("order-sign", [MRI], [])
    del body["prefetch"]
    response = client.post(SIGN_URL, json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
