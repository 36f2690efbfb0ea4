"""Site codes (CDS_VALUESET_DIR): a hospital's own codes extend the shipped value sets by id,
checked at start, listed on /readyz and /rationale with their source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.builders import AS_OF, REFERRAL_URL, ROOT, condition, finding, hook_body

from cds_service.app import create_app
from cds_service.config.checks import ConfigurationError

LOCAL_DX = "https://ehr.example-hospital.org/fhir/CodeSystem/diagnosis"
SOURCE = "Example Hospital terminology team, local diagnosis list 2026-11"


def _site_file(folder: Path, name: str = "local-fractures.json", **doc: Any) -> Path:
    body = {
        "id": "fracture-osteoporotic-vertebral",
        "title": "Local codes for osteoporotic vertebral fractures",
        "sources": [SOURCE],
        "compose": [
            {
                "system": LOCAL_DX,
                "concepts": [{"code": "OFX-L1", "display": "Osteoporotic fracture of L1", "level": "L1"}],
            }
        ],
        **doc,
    }
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(body))
    return path


def _app(folder: Path) -> Flask:
    return create_app(clock=lambda: AS_OF, auth="off", valueset_dir=folder, database_url="sqlite://")


def _answer(app: Flask, *conditions: dict[str, Any]) -> Any:
    response = app.test_client().post(REFERRAL_URL, json=hook_body(list(conditions)))
    assert response.status_code == 200
    return response.get_json()


def test_a_local_diagnosis_code_triggers_a_card(tmp_path: Path) -> None:
    local = condition("fx", "OFX-L1", LOCAL_DX)
    assert _answer(create_app(clock=lambda: AS_OF, auth="off"), local)["cards"] == []
    _site_file(tmp_path / "site")
    found = finding(_answer(_app(tmp_path / "site"), local))
    assert found["recommendation"] == "refer"
    (fracture,) = found["fractures"]
    assert fracture["level"] == "L1"
    assert fracture["etiology"] == "osteoporotic"
    assert fracture["evidence"] == ["Condition/fx"]


def test_shipped_codes_still_work_with_site_codes(tmp_path: Path) -> None:
    _site_file(tmp_path / "site")
    assert finding(_answer(_app(tmp_path / "site"), condition("fx", "M80.08XA")))["recommendation"] == "refer"


def test_site_text_patterns_extend_a_set(tmp_path: Path) -> None:
    """Text patterns join the shipped set's: e.g. a local drug name for an anticoagulant."""
    shipped = json.loads((ROOT / "cards/valuesets/anticoagulant-medication.json").read_text())
    assert "text" in shipped  # the set matches medication text
    _site_file(
        tmp_path / "site", id="anticoagulant-medication", compose=[], text={"include": [r"\bmarcoumar\b"]}
    )
    app = _app(tmp_path / "site")
    medication = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "Marcoumar 3 mg"},
    }
    body = hook_body([condition("fx", "M80.08XA")], medicationrequests=[medication])
    shipped_only = create_app(clock=lambda: AS_OF, auth="off").test_client().post(REFERRAL_URL, json=body)
    assert not finding(shipped_only.get_json()).get("contraindications")  # absent or empty
    found = finding(app.test_client().post(REFERRAL_URL, json=body).get_json())
    assert [c["code"] for c in found.get("contraindications", [])] == ["anticoagulation"]


def test_readyz_and_rationale_list_the_site_files(tmp_path: Path) -> None:
    _site_file(tmp_path / "site")
    client = _app(tmp_path / "site").test_client()
    checks = {c["name"]: c for c in client.get("/readyz").get_json()["checks"]}
    site = checks["site-valuesets"]
    assert site["ok"] is True
    assert "local-fractures.json" in site["detail"]
    assert "fracture-osteoporotic-vertebral" in site["detail"]
    assert SOURCE in site["detail"]
    page = client.get("/rationale").get_data(as_text=True)
    assert "Site codes in use here" in page
    assert "local-fractures.json" in page
    assert SOURCE in page


def test_without_site_files_nothing_is_listed() -> None:
    client = create_app(clock=lambda: AS_OF, auth="off").test_client()
    assert "site-valuesets" not in {c["name"] for c in client.get("/readyz").get_json()["checks"]}
    assert "Site codes in use here" not in client.get("/rationale").get_data(as_text=True)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"id": "fracture-of-everything"}, "unknown value set id 'fracture-of-everything'"),
        ({"compose": [{"system": "local-dx", "concepts": [{"code": "X1"}]}]}, "must be an absolute URI"),
        ({"compose": [{"system": "http://", "concepts": [{"code": "X1"}]}]}, "must be an absolute URI"),
        (
            {"compose": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "concepts": [{"code": "m8008xa"}]}]},
            "duplicate code m8008xa",
        ),
        ({"compose": [{"system": LOCAL_DX, "concepts": [{"code": "A"}, {"code": "a"}]}]}, "duplicate code a"),
        ({"sources": []}, "'sources' must list"),
        ({"trigger": [{"etiology": "pathologic"}]}, "not allowed: trigger"),
        ({"compose": [{"system": LOCAL_DX, "concepts": [{"code": "X", "level": "C5"}]}]}, "level must be"),
        ({"text": {"include": ["(unclosed"]}}, "bad regular expression"),
        (
            {"compose": [{"system": LOCAL_DX, "concepts": [{"code": "X", "region": "neck"}]}]},
            "region must be",
        ),
    ],
)
def test_a_bad_site_file_stops_the_start_with_one_line(
    tmp_path: Path, doc: dict[str, Any], message: str
) -> None:
    _site_file(tmp_path / "site", **doc)
    with pytest.raises(ConfigurationError) as raised:
        _app(tmp_path / "site")
    text = str(raised.value)
    assert text.startswith("CDS_VALUESET_DIR: local-fractures.json: ")
    assert message in text
    assert "\n" not in text


def test_the_same_code_in_two_site_files_is_a_duplicate(tmp_path: Path) -> None:
    _site_file(tmp_path / "site", name="a.json")
    _site_file(tmp_path / "site", name="b.json")
    with pytest.raises(ConfigurationError, match=r"b\.json: duplicate code OFX-L1"):
        _app(tmp_path / "site")


def test_a_site_file_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigurationError, match=r"^CDS_VALUESET_DIR: broken\.json: not JSON"):
        _app(tmp_path)


def test_an_unreadable_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^CDS_VALUESET_DIR: .*not a readable folder"):
        _app(tmp_path / "missing")
