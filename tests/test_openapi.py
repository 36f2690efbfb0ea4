"""The OpenAPI 3.1 document: valid, covering every route, and a schemathesis run against a live
gunicorn process (auth off) that must find no server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from support.builders import AS_OF
from support.live_server import LiveServer

from cds_service.app import create_app

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


def test_no_input_makes_a_server_error(live_api: LiveServer) -> None:
    """Every operation, positive and negative examples (bounded), against the real server process."""
    api = schemathesis.openapi.from_url(live_api.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {"POST /cds-services/{service_id}", "POST /cds-services/{service_id}/feedback"} <= labels
    assert len(labels) >= 5  # schemathesis leaves out the document's own path
    calls = 0
    for operation in operations:
        for mode in GenerationMode:

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
            )
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(
                    checks=[not_a_server_error], headers={"Authorization": f"Bearer {TOKEN}"}
                )

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no parameters, no body)
    logged = live_api.logged()
    assert calls >= 300
    assert logged.count('"POST /cds-services/') >= 100  # gunicorn's access log: the calls reached it
    assert '"level":"ERROR"' not in logged
