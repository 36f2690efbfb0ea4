"""Operations endpoints in-process: liveness, named readiness checks, Prometheus metrics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from support.builders import REFERRAL_URL, condition, hook_body, order_sign_body, study

from cds_service.app import create_app
from cds_service.core.terminology import Terminology
from cds_service.web.metrics import record_feedback, record_fhir_fetch
from cds_service.web.readiness import CheckResult, add_readiness_check

ORDER_SIGN_URL = "/cds-services/vertebral-augmentation-order-sign"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_healthz_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_lists_named_checks(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert [c["name"] for c in body["checks"]] == ["valuesets", "card-content", "database"]
    assert all(c["ok"] for c in body["checks"])
    assert body["checks"][0]["detail"].endswith("value sets")


def test_readyz_is_503_without_value_sets(app: Flask) -> None:
    rt = app.extensions["cds"]
    app.extensions["cds"] = dataclasses.replace(rt, terminology=Terminology({}, rt.terminology.parameters))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready"
    assert body["checks"][0] == {
        "name": "valuesets",
        "ok": False,
        "detail": "no value sets loaded",
        "required": True,
    }


def test_added_check_counts_and_an_exception_never_leaks_its_message(app: Flask) -> None:
    def database() -> CheckResult:
        raise ConnectionError("could not connect to postgresql://cds:secret@db/cds")

    add_readiness_check(app, "database", database)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    check = response.get_json()["checks"][-1]
    assert check == {
        "name": "database",
        "ok": False,
        "detail": "check failed: ConnectionError",
        "required": True,
    }
    assert b"secret" not in response.data

    add_readiness_check(app, "database", lambda: CheckResult(True, "SELECT 1"))
    assert app.test_client().get("/readyz").status_code == 200


def test_metrics_count_hook_calls_by_service_status_and_cards_by_recommendation(client: FlaskClient) -> None:
    labels = {"endpoint": "hooks.call_service", "service": "vertebral-augmentation-referral"}
    ok_before = sample("cds_request_duration_seconds_count", status="200", **labels)
    bad_before = sample("cds_request_duration_seconds_count", status="400", **labels)
    refer_before = sample(
        "cds_cards_total", service="vertebral-augmentation-referral", recommendation="refer"
    )

    body = hook_body([condition("fx", "M80.08XA")], [study("mri")])
    assert client.post(REFERRAL_URL, json=body).status_code == 200
    assert client.post(REFERRAL_URL, json=hook_body([])).status_code == 200  # no card
    assert client.post(REFERRAL_URL, json={"hook": "patient-view"}).status_code == 400

    assert sample("cds_request_duration_seconds_count", status="200", **labels) == ok_before + 2
    assert sample("cds_request_duration_seconds_count", status="400", **labels) == bad_before + 1
    assert (
        sample("cds_cards_total", service="vertebral-augmentation-referral", recommendation="refer")
        == refer_before + 1
    )

    text = client.get("/metrics").get_data(as_text=True)
    assert 'cds_cards_total{recommendation="refer",service="vertebral-augmentation-referral"}' in text
    assert "cds_request_duration_seconds_bucket{" in text


def test_unknown_service_ids_share_one_label(client: FlaskClient) -> None:
    before = sample(
        "cds_request_duration_seconds_count", endpoint="hooks.call_service", service="unknown", status="404"
    )
    for name in ("a", "b", "patient-12345"):
        assert client.post(f"/cds-services/{name}", json={}).status_code == 404
    after = sample(
        "cds_request_duration_seconds_count", endpoint="hooks.call_service", service="unknown", status="404"
    )
    assert after == before + 3
    assert "patient-12345" not in client.get("/metrics").get_data(as_text=True)


def test_metrics_endpoint_speaks_the_prometheus_text_format(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    for name in (
        "cds_request_duration_seconds",
        "cds_cards_total",
        "cds_fhir_fetches_total",
        "cds_feedback_total",
    ):
        assert f"# TYPE {name} " in text


def test_fhir_fetch_and_feedback_counters_for_other_modules(client: FlaskClient) -> None:
    before_fetch = sample("cds_fhir_fetches_total", resource_type="Condition", outcome="timeout")
    before_feedback = sample(
        "cds_feedback_total", service="vertebral-augmentation-referral", outcome="overridden"
    )
    record_fhir_fetch("Condition", "timeout")
    record_feedback("vertebral-augmentation-referral", "overridden")
    assert sample("cds_fhir_fetches_total", resource_type="Condition", outcome="timeout") == before_fetch + 1
    assert (
        sample("cds_feedback_total", service="vertebral-augmentation-referral", outcome="overridden")
        == before_feedback + 1
    )
    text = client.get("/metrics").get_data(as_text=True)
    assert 'cds_fhir_fetches_total{outcome="timeout",resource_type="Condition"}' in text


def test_order_hook_cards_are_counted_under_their_own_service(client: FlaskClient) -> None:
    before = sample(
        "cds_cards_total", service="vertebral-augmentation-order-sign", recommendation="order-not-supported"
    )
    assert client.post(ORDER_SIGN_URL, json=order_sign_body()).status_code == 200
    after = sample(
        "cds_cards_total", service="vertebral-augmentation-order-sign", recommendation="order-not-supported"
    )
    assert after == before + 1


def test_a_hook_call_that_must_fetch_counts_each_fetch_outcome(client: FlaskClient) -> None:

    before = sample("cds_fhir_fetches_total", resource_type="ImagingStudy", outcome="no-fhir-server")
    body = hook_body([condition("fx", "M80.08XA")])
    del body["prefetch"]["imaging"]  # missing, and no fhirServer to fetch it from
    assert client.post(REFERRAL_URL, json=body).status_code == 200
    after = sample("cds_fhir_fetches_total", resource_type="ImagingStudy", outcome="no-fhir-server")
    assert after == before + 1


def test_readyz_checks_the_database(tmp_path: Path) -> None:
    good = create_app(auth="off", database_url=f"sqlite:///{tmp_path}/ok.sqlite").test_client()
    answer = good.get("/readyz")
    assert answer.status_code == 200
    assert {c["name"]: c["ok"] for c in answer.get_json()["checks"]}["database"] is True
    unreachable = "postgresql+psycopg://cds:secret-pw@127.0.0.1:1/no-such-db"  # nothing listens on port 1
    bad = create_app(auth="off", database_url=unreachable).test_client()
    answer = bad.get("/readyz")
    assert answer.status_code == 200  # hooks can still be answered: not a reason to leave the Service
    (database,) = [c for c in answer.get_json()["checks"] if c["name"] == "database"]
    assert database == {
        "name": "database",
        "ok": False,
        "detail": "postgresql unreachable",
        "required": False,
    }
    assert "secret-pw" not in answer.get_data(as_text=True)
    assert 'cds_database_up{backend="postgresql"} 0.0' in bad.get("/metrics").get_data(as_text=True)
    strict = create_app(auth="off", database_url=unreachable, ready_requires_database=True).test_client()
    answer = strict.get("/readyz")
    assert answer.status_code == 503
    assert "secret-pw" not in answer.get_data(as_text=True)
