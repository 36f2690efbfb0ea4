"""CLI errors as a newcomer meets them: one line on stderr, no traceback, an exit code per kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import NEGATIVE, POSITIVE, spine_cds, spine_cds_process
from support.fhir_server import FhirTestServer
from support.threaded import in_thread

import cds_service.cli.main as cli
from cds_service.app import create_app


def _one_line_error(result: object, code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    err: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spine-cds: ")
    return lines[0]


def test_missing_file(tmp_path: Path) -> None:
    line = _one_line_error(spine_cds("evaluate", str(tmp_path / "nope.json")), cli.EXIT_INPUT)
    assert "no such file or folder" in line


def test_bad_json(tmp_path: Path) -> None:
    bad = tmp_path / "export.json"
    bad.write_text('{"resourceType": "Bundle", "entry": [')
    line = _one_line_error(spine_cds("evaluate", str(bad)), cli.EXIT_INPUT)
    assert "not JSON" in line


def test_json_that_is_not_fhir(tmp_path: Path) -> None:
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    line = _one_line_error(spine_cds("request", str(bad)), cli.EXIT_INPUT)
    assert "expected a FHIR Bundle" in line


def test_folder_without_a_bundle(tmp_path: Path) -> None:
    line = _one_line_error(spine_cds("evaluate", str(tmp_path)), cli.EXIT_INPUT)
    assert "needs a bundle.json" in line


def test_a_patient_not_in_the_input_is_an_error() -> None:
    line = _one_line_error(spine_cds("evaluate", str(POSITIVE), "--patient", "abc"), cli.EXIT_PATIENT)
    assert "not in the input" in line
    assert "abc" not in line  # identifiers stay out of error text


def test_the_patient_in_the_input_still_works() -> None:
    result = spine_cds(
        "evaluate",
        str(NEGATIVE),
        "--patient",
        json.loads((NEGATIVE / "bundle.json").read_text())["entry"][0]["resource"]["id"],
    )
    assert result.returncode == 0, result.stderr


def test_try_a_patient_the_server_does_not_have(fhir_server: FhirTestServer) -> None:
    result = spine_cds("try", "--fhir-server", fhir_server.base_url, "--patient", "does-not-exist")
    line = _one_line_error(result, cli.EXIT_PATIENT)
    assert "HTTP 404" in line
    assert result.stdout == ""


def test_try_an_unreachable_service(fhir_server: FhirTestServer) -> None:
    result = spine_cds(
        "try",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "s01-patient",
        "--service-url",
        "http://127.0.0.1:9",
    )
    line = _one_line_error(result, cli.EXIT_UNREACHABLE)
    assert "cannot reach the service" in line


def test_as_of_with_a_running_service_says_what_to_do_instead(fhir_server: FhirTestServer) -> None:
    result = spine_cds(
        "try",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "s01-patient",
        "--service-url",
        "http://127.0.0.1:9",
        "--as-of",
        "2026-06-15",
    )
    line = _one_line_error(result, cli.EXIT_USAGE)
    assert "make sandbox" in line


@pytest.fixture
def https_only_service() -> Iterator[str]:
    """A running service as deployed: plain-http FHIR servers refused."""
    with in_thread(create_app(auth="off", database_url="sqlite://")) as url:
        yield url


def test_try_412_not_https_hints_at_the_setting(fhir_server: FhirTestServer, https_only_service: str) -> None:
    result = spine_cds(
        "try",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "s01-patient",
        "--service-url",
        https_only_service,
    )
    assert result.returncode == cli.EXIT_SERVICE_ERROR
    assert "not-https" in result.stdout
    assert "HTTP 412" in result.stderr
    assert "CDS_ALLOW_HTTP_FHIR=true" in result.stderr


def test_serve_with_a_bad_configuration_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuers = tmp_path / "issuers.json"
    issuers.write_text('{"issuers": []}')
    monkeypatch.setenv("CDS_TRUSTED_ISSUERS", str(issuers))
    monkeypatch.setenv("CDS_AUTH", "jwt")
    # serve execs gunicorn when the configuration is good: never in the test process
    line = _one_line_error(spine_cds_process("serve", "--bind", "127.0.0.1:9"), cli.EXIT_CONFIGURATION)
    assert line.startswith("spine-cds: CDS_TRUSTED_ISSUERS: ")
    assert "every call would be refused" in line


def test_a_bad_setting_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_RECENT_DAYS", "soon")
    line = _one_line_error(spine_cds("evaluate", str(POSITIVE)), cli.EXIT_CONFIGURATION)
    assert line.startswith("spine-cds: CDS_RECENT_DAYS: ")


def test_report_with_a_bad_database_url() -> None:
    result = spine_cds("report", "--database-url", "postgres-ish://user:secret@host/db")
    line = _one_line_error(result, cli.EXIT_CONFIGURATION)
    assert line.startswith("spine-cds: CDS_DATABASE_URL: ")
    assert "secret" not in line
