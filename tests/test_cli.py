"""spine-cds as a newcomer runs it: a real subprocess, output parsed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from cds_service.offline import rebase_dates

ROOT = Path(__file__).resolve().parent.parent
POSITIVE = ROOT / "fhir_fixtures" / "01-osteoporotic-l1-mri"
NEGATIVE = ROOT / "fhir_fixtures" / "76-noise-only"


def spine_cds(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cds_service.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_evaluate_positive_fixture_prints_one_card() -> None:
    result = spine_cds("evaluate", str(POSITIVE))
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
