"""Shared fixtures: the app at a fixed date, its client, and a patient-view caller."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.builders import AS_OF, FIXTURES, REFERRAL_URL, Call, hook_body
from support.cds_validator import CHECKED
from support.fhir_server import FhirTestServer
from support.postgres import PostgresServer

from cds_service.app import create_app
from cds_service.core.terminology import Terminology, load_terminology


def pytest_configure(config: pytest.Config) -> None:
    """Apps built without a database URL (and CLI subprocesses) write to a throwaway SQLite file."""
    folder = tempfile.mkdtemp(prefix="cds-tests-")
    os.environ.setdefault("CDS_DATABASE_URL", f"sqlite:///{folder}/cds.sqlite")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How much the strict CDS Hooks validator (tests/support/cds_validator.py) checked this run."""
    if CHECKED:
        counts = ", ".join(f"{n} {kind}s" for kind, n in sorted(CHECKED.items()))
        terminalreporter.write_line(f"CDS Hooks 2.0.1 validator: checked {counts}")


@pytest.fixture(scope="session")
def terminology() -> Terminology:
    return load_terminology()


@pytest.fixture
def app() -> Flask:
    return create_app(clock=lambda: AS_OF, auth="off")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def call(client: FlaskClient) -> Call:
    """POST a patient-view call and return the parsed JSON answer (asserting 200)."""

    def _call(*args: Any, **kwargs: Any) -> Any:
        response = client.post(REFERRAL_URL, json=hook_body(*args, **kwargs))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return _call


@pytest.fixture(scope="session")
def fhir_server_process() -> Iterator[FhirTestServer]:
    """One real FHIR server (Medplum in-memory, fhir_fixtures/ loaded) for the whole session."""
    with FhirTestServer(FIXTURES) as server:
        yield server


@pytest.fixture
def fhir_server(fhir_server_process: FhirTestServer) -> FhirTestServer:
    """The session's FHIR server with no faults and an empty request log."""
    fhir_server_process.reset()
    return fhir_server_process


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; each test that needs it gets a fresh database."""
    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, for tests that stop and start it (outages)."""
    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Storage tests run against both backends: a fresh SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cds.sqlite"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
