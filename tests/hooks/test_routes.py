"""The wire contract: discovery, request validation, prefetch shapes and every error status."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.builders import AS_OF, PATIENT_ID, REFERRAL_URL, ROOT, condition, hook_body, searchset

from cds_service.app import create_app
from cds_service.config.settings import Settings

FRACTURE = condition("fx", "M80.08XA")


def _outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    return body


def test_discovery_lists_the_referral_service_with_prefetch_templates(client: FlaskClient) -> None:
    services = client.get("/cds-services").get_json()["services"]
    referral = next(s for s in services if s["id"] == "vertebral-augmentation-referral")
    assert referral["hook"] == "patient-view"
    assert referral["title"]
    assert referral["description"]
    assert referral["prefetch"] == {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "imaging": "ImagingStudy?patient={{context.patientId}}",
        "procedures": "Procedure?patient={{context.patientId}}",
        "servicerequests": "ServiceRequest?patient={{context.patientId}}",
        "medicationrequests": "MedicationRequest?patient={{context.patientId}}",
        "medicationstatements": "MedicationStatement?patient={{context.patientId}}",
        "allergies": "AllergyIntolerance?patient={{context.patientId}}",
        "reports": "DiagnosticReport?patient={{context.patientId}}",
    }


def test_positive_call_returns_one_card(client: FlaskClient) -> None:
    response = client.post(REFERRAL_URL, json=hook_body([FRACTURE]))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert len(response.get_json()["cards"]) == 1


def test_unknown_service_is_404(client: FlaskClient) -> None:
    _outcome(client.post("/cds-services/no-such-service", json=hook_body()), 404)


def test_unknown_path_is_404_operation_outcome(client: FlaskClient) -> None:
    _outcome(client.get("/nothing-here"), 404)


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_wrong_method_is_405(client: FlaskClient, method: str) -> None:
    response = getattr(client, method)(REFERRAL_URL)
    _outcome(response, 405)
    assert "POST" in response.headers["Allow"]


def test_post_to_discovery_is_405(client: FlaskClient) -> None:
    _outcome(client.post("/cds-services", json={}), 405)


def test_body_over_the_limit_is_413() -> None:
    client = create_app(clock=lambda: AS_OF, max_body_bytes=2048, auth="off").test_client()
    body = hook_body([condition(f"c{i}", "I10") for i in range(40)])
    _outcome(client.post(REFERRAL_URL, data=orjson.dumps(body), content_type="application/json"), 413)


def test_body_under_the_limit_is_answered() -> None:
    client = create_app(clock=lambda: AS_OF, max_body_bytes=1_000_000, auth="off").test_client()
    assert client.post(REFERRAL_URL, json=hook_body([FRACTURE])).status_code == 200


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda b: b.pop("hook"), "hook"),
        (lambda b: b.update(hook="order-sign"), "hook"),
        (lambda b: b.update(hook=7), "hook"),
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.update(hookInstance=""), "hookInstance"),
        (lambda b: b.update(hookInstance=["x"]), "hookInstance"),
        (lambda b: b.pop("context"), "context"),
        (lambda b: b.update(context="p1"), "context"),
        (lambda b: b["context"].pop("patientId"), "patientId"),
        (lambda b: b["context"].update(patientId=12), "patientId"),
        (lambda b: b["context"].update(patientId="../../etc/passwd"), "patientId"),
        (lambda b: b["context"].update(userId={"x": 1}), "userId"),
        (lambda b: b.update(fhirServer=5), "fhirServer"),
        (lambda b: b.update(fhirAuthorization="Bearer x"), "fhirAuthorization"),
        (lambda b: b.update(prefetch=[1, 2]), "prefetch"),
        (lambda b: b["prefetch"].update(conditions="oops"), "prefetch"),
        (lambda b: b["prefetch"].update(conditions={"resourceType": "Bundle", "entry": {"a": 1}}), "Bundle"),
    ],
)
def test_malformed_requests_are_400(client: FlaskClient, mutate: Any, needle: str) -> None:
    body = hook_body([FRACTURE])
    mutate(body)
    outcome = _outcome(client.post(REFERRAL_URL, json=body), 400)
    assert needle in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b'"text"', b"null", b"\xff\xfe", b"[" * 5000 + b"]" * 5000]
)
def test_unparseable_or_non_object_bodies_are_400(client: FlaskClient, raw: bytes) -> None:
    _outcome(client.post(REFERRAL_URL, data=raw, content_type="application/json"), 400)


def test_non_json_content_type_is_400(client: FlaskClient) -> None:
    data = orjson.dumps(hook_body([FRACTURE]))
    _outcome(client.post(REFERRAL_URL, data=data, content_type="text/plain"), 400)


def test_fhir_json_content_type_is_accepted(client: FlaskClient) -> None:
    data = orjson.dumps(hook_body([FRACTURE]))
    assert client.post(REFERRAL_URL, data=data, content_type="application/fhir+json").status_code == 200


def test_missing_required_prefetch_without_fhir_server_is_412(client: FlaskClient) -> None:
    body = hook_body([FRACTURE])
    del body["prefetch"]["conditions"]
    outcome = _outcome(client.post(REFERRAL_URL, json=body), 412)
    assert "conditions" in outcome["issue"][0]["diagnostics"]


def test_no_prefetch_at_all_is_412(client: FlaskClient) -> None:
    body = hook_body()
    del body["prefetch"]
    _outcome(client.post(REFERRAL_URL, json=body), 412)


def test_operation_outcome_prefetch_counts_as_missing(client: FlaskClient) -> None:
    body = hook_body([FRACTURE])
    body["prefetch"]["conditions"] = {"resourceType": "OperationOutcome", "issue": []}
    _outcome(client.post(REFERRAL_URL, json=body), 412)


def test_null_prefetch_means_no_data(client: FlaskClient) -> None:
    body = hook_body()
    body["prefetch"]["conditions"] = None
    response = client.post(REFERRAL_URL, json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_single_resource_prefetch_is_read(client: FlaskClient) -> None:
    body = hook_body()
    body["prefetch"]["conditions"] = FRACTURE
    assert len(client.post(REFERRAL_URL, json=body).get_json()["cards"]) == 1


def test_large_searchset_is_read_in_full(client: FlaskClient) -> None:
    noise = [condition(f"n{i}", "I10", onset="2020-01-01") for i in range(3000)]
    response = client.post(REFERRAL_URL, json=hook_body([*noise, FRACTURE]))
    assert len(response.get_json()["cards"]) == 1


def test_missing_optional_imaging_is_answered_and_said(client: FlaskClient) -> None:
    body = hook_body([FRACTURE])
    del body["prefetch"]["imaging"]
    card = client.post(REFERRAL_URL, json=body).get_json()["cards"][0]
    assert card["extension"]["vertebral-augmentation-cds/finding"]["dataUnavailable"] == ["ImagingStudy"]
    assert "Imaging data were unavailable" in card["detail"]


def test_resources_of_another_patient_are_ignored(client: FlaskClient) -> None:
    other = condition("fx-other", "M80.08XA", patient="someone-else")
    assert client.post(REFERRAL_URL, json=hook_body([other])).get_json() == {"cards": []}


def test_entries_of_other_types_and_junk_are_ignored(client: FlaskClient) -> None:
    bundle = searchset([FRACTURE])
    bundle["entry"] += [{"resource": {"resourceType": "Observation"}}, {"x": 1}, 5, {"resource": "text"}]
    body = hook_body()
    body["prefetch"]["conditions"] = bundle
    assert len(client.post(REFERRAL_URL, json=body).get_json()["cards"]) == 1


def test_errors_never_echo_tokens_or_patient_ids(client: FlaskClient) -> None:
    body = hook_body([FRACTURE], fhirAuthorization={"access_token": "SECRET-TOKEN", "token_type": "Bearer"})
    body["context"]["patientId"] = "secret-patient-42"
    del body["prefetch"]["conditions"]
    text = client.post(REFERRAL_URL, json=body).get_data(as_text=True)
    assert "SECRET-TOKEN" not in text
    assert "secret-patient-42" not in text


def test_rationale_page_is_served_and_cards_link_to_it(client: FlaskClient) -> None:
    page = client.get("/rationale")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert "60 days" in page.get_data(as_text=True)
    card = client.post(REFERRAL_URL, json=hook_body([FRACTURE])).get_json()["cards"][0]
    assert card["source"]["url"] == "http://localhost/rationale"


def test_public_base_url_sets_the_rationale_link() -> None:
    app: Flask = create_app(clock=lambda: AS_OF, public_base_url="https://cds.example.org/base/", auth="off")
    card = app.test_client().post(REFERRAL_URL, json=hook_body([FRACTURE])).get_json()["cards"][0]
    assert card["source"]["url"] == "https://cds.example.org/base/rationale"


def test_patient_id_in_suggestion_subject(client: FlaskClient) -> None:
    card = client.post(REFERRAL_URL, json=hook_body([FRACTURE])).get_json()["cards"][0]
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`CDS_{name.upper()}`" in readme, name
