"""spine-cds as a newcomer runs it: output parsed (in-process through main(), and once as the
installed console script)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from support.builders import ROOT
from support.cli import NEGATIVE, POSITIVE, spine_cds, spine_cds_process
from support.fhir_server import FhirTestServer
from support.threaded import in_thread

from cds_service.app import create_app
from cds_service.cli.main import main
from cds_service.demo.scenario import rebase_dates
from cds_service.hooks.catalogue import REFERRAL

POSITIVE_AS_OF = json.loads((POSITIVE / "scenario.json").read_text())["asOf"]


def test_evaluate_positive_fixture_prints_one_card() -> None:
    """The console script itself, as a newcomer runs it (the other tests call main() in-process)."""
    result = spine_cds_process("evaluate", str(POSITIVE))
    assert result.returncode == 0, result.stderr
    cards = json.loads(result.stdout)["cards"]
    assert len(cards) == 1
    assert cards[0]["extension"]["vertebral-augmentation-cds/finding"]["recommendation"] == "refer"


def test_evaluate_negative_fixture_prints_no_cards() -> None:
    result = spine_cds("evaluate", str(NEGATIVE))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"cards": []}


def test_evaluate_bundle_file_with_as_of(tmp_path: Path) -> None:
    bundle = json.loads((POSITIVE / "bundle.json").read_text())
    bundle["type"] = "transaction"
    path = tmp_path / "export.json"
    path.write_text(json.dumps(bundle))
    as_of = json.loads((POSITIVE / "scenario.json").read_text())["asOf"]
    assert len(json.loads(spine_cds("evaluate", str(path), "--as-of", as_of).stdout)["cards"]) == 1
    late = (date.fromisoformat(as_of) + timedelta(days=400)).isoformat()
    assert json.loads(spine_cds("evaluate", str(path), "--as-of", late).stdout) == {"cards": []}


def test_evaluate_ndjson(tmp_path: Path) -> None:
    bundle = json.loads((POSITIVE / "bundle.json").read_text())
    path = tmp_path / "export.ndjson"
    path.write_text("\n".join(json.dumps(e["resource"]) for e in bundle["entry"]) + "\n")
    as_of = json.loads((POSITIVE / "scenario.json").read_text())["asOf"]
    assert len(json.loads(spine_cds("evaluate", str(path), "--as-of", as_of).stdout)["cards"]) == 1


def test_request_rebases_dates_so_the_fixture_stays_recent() -> None:
    result = spine_cds("request", str(POSITIVE))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["hook"] == "patient-view"
    from cds_service.app import create_app

    answer = (
        create_app(auth="off").test_client().post("/cds-services/vertebral-augmentation-referral", json=body)
    )
    assert len(answer.get_json()["cards"]) == 1


def test_several_patients_need_a_choice(tmp_path: Path) -> None:
    bundle = json.loads((POSITIVE / "bundle.json").read_text())
    bundle["entry"].append({"resource": {"resourceType": "Patient", "id": "another"}})
    path = tmp_path / "two.json"
    path.write_text(json.dumps(bundle))
    result = spine_cds("evaluate", str(path))
    assert result.returncode != 0
    assert "--patient" in result.stderr


@pytest.mark.parametrize(
    ("value", "days", "shifted"),
    [
        ("2026-01-31", 1, "2026-02-01"),
        ("2026-01-31T10:00:00+02:00", 30, "2026-03-02T10:00:00+02:00"),
        ("2026-01", 5, "2026-01"),
        ("12345678", 5, "12345678"),
        ("2026-13-45", 5, "2026-13-45"),
    ],
)
def test_rebase_dates(value: str, days: int, shifted: str) -> None:
    assert rebase_dates({"a": [{"b": value}]}, days) == {"a": [{"b": shifted}]}


def _try_args(server: FhirTestServer, token: str) -> list[str]:
    return ["try", "--fhir-server", server.base_url, "--patient", "s01-patient", "--token", token]


def test_try_plays_the_ehr_against_a_fhir_server(fhir_server: FhirTestServer) -> None:
    result = spine_cds(*_try_args(fhir_server, "tok-1"), "--as-of", POSITIVE_AS_OF)
    assert result.returncode == 0, result.stderr
    (card,) = json.loads(result.stdout)["cards"]
    assert card["extension"]["vertebral-augmentation-cds/finding"]["recommendation"] == "refer"
    assert re.search(r"HTTP 200, 1 card\(s\), total \d+\.\d ms", result.stderr)
    requested = fhir_server.requests()
    assert len(requested) == len(REFERRAL.prefetch)  # one search per prefetch key: nothing was prefetched
    assert all(r["authorization"] == "Bearer tok-1" for r in requested)


def test_try_shows_the_412_when_the_server_refuses_the_token(fhir_server: FhirTestServer) -> None:
    fhir_server.control(requireToken="the-right-one")
    result = spine_cds(*_try_args(fhir_server, "wrong-token"))
    assert result.returncode == 1
    assert "conditions (auth-refused)" in result.stdout
    assert "wrong-token" not in result.stdout + result.stderr


@pytest.fixture
def running_service() -> Iterator[str]:
    """The service over real HTTP on a free port, at the positive fixture's date."""
    as_of = date.fromisoformat(POSITIVE_AS_OF)
    with in_thread(create_app(clock=lambda: as_of, allow_http_fhir=True, auth="off")) as url:
        yield url


def test_try_calls_a_running_service(
    fhir_server: FhirTestServer, running_service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_try_args(fhir_server, "tok-2"), "--service-url", running_service]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)["cards"]) == 1
    assert "HTTP 200" in err


def test_evaluate_strict_lists_fhir_errors_without_changing_the_decision(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = str(ROOT / "fhir_fixtures" / "20-malformed-resources-skipped")
    assert main(["evaluate", folder]) == 0
    lenient = json.loads(capsys.readouterr().out)
    assert main(["evaluate", folder, "--strict"]) == 8
    captured = capsys.readouterr()
    strict = json.loads(captured.out)
    assert [c["extension"] for c in strict["cards"]] == [c["extension"] for c in lenient["cards"]]
    errors = [line for line in captured.err.splitlines() if line.startswith("spine-cds: FHIR error:")]
    assert len(errors) == 3
    assert any("Condition/s20-bad-code: code:" in line for line in errors)
    assert "not-a-date" not in captured.err  # element paths and error kinds, never the values


def test_evaluate_strict_on_valid_input_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(POSITIVE), "--strict"]) == 0
    assert "strict: 0 FHIR error(s)" in capsys.readouterr().err
