"""The OpenAPI 3.1 document: valid, covering every route, and a schemathesis run against a live
gunicorn process (auth off): no server error, every response conforming to the document, every hook
answer valid CDS Hooks 2.0.1 (tests/support/cds_validator.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.builders import AS_OF, FIXTURES
from support.cds_validator import CHECKED, check_response
from support.live_server import LiveServer

from cds_service.app import create_app
from cds_service.demo.scenario import hook_request_for, patient_ids, read_scenario, rebase_dates
from cds_service.hooks.catalogue import SERVICES

TOKEN = "schemathesis-analytics"


def test_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.parametrize("demo", [False, True])
def test_document_covers_every_route(demo: bool) -> None:
    client = create_app(clock=lambda: AS_OF, auth="off", demo=demo).test_client()
    document = client.get("/openapi.json").get_json()
    documented = {
        (path.replace("{service_id}", "<service_id>").replace("{name}", "<name>"), method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    routes = {
        (rule.rule, method)
        for rule in client.application.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS") and not rule.endpoint.endswith("static")
    }
    assert routes == documented
    services = document["paths"]["/cds-services/{service_id}"]["post"]["parameters"][0]["schema"]["enum"]
    assert set(services) == {s["id"] for s in client.get("/cds-services").get_json()["services"]}


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    env = {
        "CDS_AUTH": "off",
        "CDS_DATABASE_URL": f"sqlite:///{folder}/api.sqlite",
        "CDS_ANALYTICS_TOKEN": TOKEN,
    }
    server = LiveServer(env, workers=1).start()
    yield server
    server.stop()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
"""Schemathesis 4's own API (no pytest plugin, which does not load under pytest 9): every response
must be documented (status, content type, headers) and match its schema in the OpenAPI document."""


def test_every_response_conforms_to_the_openapi_document(live_api: LiveServer) -> None:
    """Every operation, positive and negative examples (bounded), against the real server process:
    no server error, every response as documented, every hook answer valid CDS Hooks 2.0.1."""
    api = schemathesis.openapi.from_url(live_api.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {"POST /cds-services/{service_id}", "POST /cds-services/{service_id}/feedback"} <= labels
    assert len(labels) >= 5  # schemathesis leaves out the document's own path
    calls = 0
    hook_answers_before = CHECKED["hook response"]
    for operation in operations:
        for mode in GenerationMode:

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
            )
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                _call(case, operation.label)  # noqa: B023 (run() is called in this iteration)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no parameters, no body)
    # Random bodies hardly ever make a hook call that is answered with cards: the same generated
    # calls once more, made valid where they must be (hook, patient, prefetch, orders of a fixture).
    hook_operation = next(o for o in operations if o.label == "POST /cds-services/{service_id}")
    parts = _valid_parts()

    @given(case=hook_operation.as_strategy(GenerationMode.POSITIVE))
    @settings(max_examples=90, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def run_valid(case: Any) -> None:
        nonlocal calls
        calls += 1
        _call(_made_valid(case, parts), hook_operation.label)

    run_valid()
    logged = live_api.logged()
    answered = CHECKED["hook response"] - hook_answers_before
    print(f"schemathesis: {calls} calls, {answered} hook answers validated as CDS Hooks 2.0.1")
    assert answered >= 80
    assert CHECKED["card"] > 0
    assert calls >= 300
    assert logged.count('"POST /cds-services/') >= 100  # gunicorn's access log: the calls reached it
    assert '"level":"ERROR"' not in logged


def _call(case: Any, label: str) -> None:
    response = case.call_and_validate(checks=CHECKS, headers={"Authorization": f"Bearer {TOKEN}"})
    if label == "POST /cds-services/{service_id}" and response.status_code == 200:
        check_response(response.json())


def _valid_parts() -> dict[str, dict[str, Any]]:
    """Per service: a fixture's hook, context and full prefetch, dates moved to today (the live
    server evaluates at today's date): 01 refers, 91 makes both order hooks warn."""
    parts: dict[str, dict[str, Any]] = {}
    for service in SERVICES.values():
        folder = FIXTURES / (
            "01-osteoporotic-l1-mri"
            if service.hook == "patient-view"
            else "91-order-sign-no-fracture-kyphoplasty"
        )
        scenario = read_scenario(folder)
        assert scenario.as_of is not None
        (patient_id,) = patient_ids(scenario.resources)
        context = dict(scenario.context)
        if service.hook == "order-select":
            context["selections"] = [
                f"{e['resource']['resourceType']}/{e['resource']['id']}"
                for e in context["draftOrders"]["entry"]
            ]
        context.pop("selections", None) if service.hook != "order-select" else None
        body = hook_request_for(scenario.resources, service, patient_id, context=context)
        parts[service.id] = rebase_dates(body, (date.today() - scenario.as_of).days)
    return parts


def _made_valid(case: Any, parts: dict[str, dict[str, Any]]) -> Any:
    """Keep what schemathesis generated (userId, fhirServer, fhirAuthorization, extra members) and
    put in what a hook call must have to be answered with cards."""
    good = parts[case.path_parameters["service_id"]]
    body = dict(case.body) if isinstance(case.body, dict) else {}
    context = body.get("context") if isinstance(body.get("context"), dict) else {}
    body.update(hook=good["hook"], hookInstance=str(uuid.uuid4()), prefetch=good["prefetch"])
    body["context"] = {**context, **good["context"]}
    case.body = body
    return case
