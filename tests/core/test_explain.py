"""--explain: per resource read, what it matched or why it was set aside, then the decision; the same
trace from a running service in demo mode only, never in a production answer or a log line."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support.builders import FIXTURES, SCENARIOS
from support.fhir_server import FhirTestServer
from support.fixture_calls import client_on
from support.threaded import in_thread

from cds_service.app import create_app
from cds_service.cli.main import main
from cds_service.core.decision import decide_referral
from cds_service.core.explain import Trace
from cds_service.core.record import read_record
from cds_service.core.terminology import load_terminology
from cds_service.demo.scenario import hook_request_for, read_scenario
from cds_service.hooks.catalogue import REFERRAL
from cds_service.web.logs import JsonFormatter

POSITIVE = FIXTURES / "01-osteoporotic-l1-mri"
EXPLAIN = "vertebral-augmentation-cds/explain"
URL = f"/cds-services/{REFERRAL.id}"


def _explain(fixture: str, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """stdout's answer, and the explanation lines on stderr keyed by resource ref ("decision" too)."""
    assert main(["evaluate", str(FIXTURES / fixture), "--explain"]) == 0
    out, err = capsys.readouterr()
    lines = [line.strip() for line in err.splitlines()]
    assert lines[0] == "explain (per resource read, then the decision):"
    by_ref = {line.split(": ", 1)[0].split(" [", 1)[0]: line for line in lines[1:]}
    return json.loads(out), by_ref


def test_positive_fixture_says_trigger_context_and_imaging(capsys: pytest.CaptureFixture[str]) -> None:
    answer, lines = _explain("01-osteoporotic-l1-mri", capsys)
    assert len(answer["cards"]) == 1
    assert "extension" not in answer  # stdout stays what the EHR gets
    fracture = lines["Condition/s01-fx"]
    assert "[icd-10-cm M80.08XA]" in fracture
    assert "matched trigger: osteoporotic fracture L1, diagnosed 2026-06-01, 14 days old" in fracture
    assert lines["Condition/s01-osteoporosis"].endswith("matched context: osteoporosis on record")
    assert lines["ImagingStudy/s01-mri"].endswith("matched imaging: spine MR 2026-06-03, confirms acuity")
    assert lines["Condition/s01-hypertension"].endswith("set aside, no code the rules know")
    assert lines["decision"] == (
        "decision: refer: 1 recent fracture(s) (L1); acuity confirmed by imaging; contraindications: none"
    )
    shown = "\n".join(lines.values())
    assert "Age-related osteoporosis" not in shown  # codes, never the record's own words
    assert "Lumbar" not in shown
    assert "lumbar spine" not in shown.lower()


def test_silent_fixture_says_why_each_resource_did_not_count(capsys: pytest.CaptureFixture[str]) -> None:
    answer, lines = _explain("76-noise-only", capsys)
    assert answer == {"cards": []}
    assert lines["Condition/s76-hip-fracture"] == (
        "Condition/s76-hip-fracture [snomed 359817006]: set aside, no code the rules know"
    )
    assert lines["ImagingStudy/s76-cxr"].endswith("set aside, not spine imaging")
    assert lines["ImagingStudy/s76-xr-lumbar"].endswith(
        "set aside, spine imaging 2026-05-20: no recent fracture to support"
    )
    assert lines["decision"] == "decision: no card: no recent qualifying fracture"


def test_status_filter_fixture_names_each_status(capsys: pytest.CaptureFixture[str]) -> None:
    _, lines = _explain("08-clinical-status-filter", capsys)
    for ref, status in [
        ("l2-inactive", "inactive"),
        ("l3-resolved", "resolved"),
        ("l4-remission", "remission"),
    ]:
        assert lines[f"Condition/s08-fx-{ref}"].endswith(f"set aside, clinical status: {status}")
    assert "matched trigger: osteoporotic fracture L1" in lines["Condition/s08-fx-l1"]
    assert "matched trigger: osteoporotic fracture T12" in lines["Condition/s08-fx-t12-relapse"]
    assert lines["decision"].startswith("decision: refer: 2 recent fracture(s) (T12, L1)")


def test_unreadable_fixture_names_the_element_never_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    answer, lines = _explain("20-malformed-resources-skipped", capsys)
    assert len(answer["cards"]) == 1
    assert lines["Condition/s20-bad-code"].endswith("set aside, unreadable: code")
    assert lines["Condition/s20-fx-l3-bad-date"].endswith("set aside, unreadable: onset / recorded date")
    assert lines["Condition/s20-sepsis-bad-date"] == (
        "Condition/s20-sepsis-bad-date [icd-10-cm A41.9]: set aside, unreadable: onset / recorded date"
    )
    assert "matched trigger" in lines["Condition/s20-fx-l1"]
    assert lines["decision"].endswith("unreadable, said on the card: Condition 3")
    assert "not-a-date" not in "\n".join(lines.values())


def test_reader_reasons_other_patient_verification_abated_future_not_a_resource() -> None:
    scenario = read_scenario(POSITIVE)
    fracture = next(r for r in scenario.resources if r.get("id") == "s01-fx")

    def variant(new_id: str, **changes: Any) -> dict[str, Any]:
        found = copy.deepcopy(fracture)
        found.update(id=new_id, **changes)
        return found

    refuted = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "refuted"}
        ]
    }
    conditions = [
        fracture,
        variant("other", subject={"reference": "Patient/someone-else"}),
        variant("refuted", verificationStatus=refuted),
        variant("abated", abatementDateTime="2026-06-05"),
        variant("future", onsetDateTime="2026-09-01"),
        "not a resource",
    ]
    terminology = load_terminology()
    trace = Trace()
    today = date(2026, 6, 15)
    record = read_record({"Condition": conditions}, terminology, today, patient_id="s01-patient", trace=trace)
    decision = decide_referral(record, terminology, today, 60, trace)
    said = {ref: " ".join(e.what for e in entries) for ref, entries in trace.by_resource()}
    assert said["Condition/other"] == "other patient"
    assert said["Condition/refuted"] == "verification status: refuted"
    assert said["Condition/abated"] == "abated"
    assert said["Condition/future"] == "future date: 2026-09-01"
    assert said["Condition entry 6"] == "not a Condition"
    assert decision.recommendation == "refer"
    assert trace.decision[0] == "refer: 1 recent fracture(s) (L1)"


@pytest.mark.parametrize(
    ("fixture", "ref", "reason"),
    [
        (
            "54-infection-stale",
            "Condition/s54-sepsis",
            "set aside, infection too old to count (over 90 days)",
        ),
        ("28-cervical-sacral-icd-excluded", "Condition/s28-fx-s12", "set aside, out-of-scope code"),
        ("15-undated-fracture", "Condition/s15-fx-l2", "set aside, fracture code, undated"),
        ("93-order-sign-sepsis", "Condition/s93-sepsis", "matched contraindication: infection (absolute)"),
        (
            "25-collapsed-vertebra-bone-metastases",
            "Condition/s25-bone-mets",
            "context: bone-malignancy on record",
        ),
        ("19-future-dated-ignored", "Condition/s19-fx-l1-future", "set aside, future date: 2026-07-05"),
        (
            "09-verification-status-filter",
            "Condition/s09-fx-l2-entered-in-error",
            "verification status: entered-in-error",
        ),
    ],
)
def test_each_kind_of_reason_on_its_fixture(
    fixture: str, ref: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines = _explain(fixture, capsys)
    assert reason in lines[ref]


def test_suppression_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = next(p.name for p in FIXTURES.iterdir() if p.name.startswith("78-"))
    _, lines = _explain(scenario, capsys)
    assert "matched suppression: procedure" in lines["Procedure/s78-kyphoplasty"]
    assert "every one already treated or referred" in lines["decision"]


def _body(fixture: Path) -> dict[str, Any]:
    scenario = read_scenario(fixture)
    return hook_request_for(scenario.resources, REFERRAL, "s01-patient")


def _cards_without_uuids(answer: dict[str, Any]) -> list[dict[str, Any]]:
    text = json.dumps(answer["cards"])
    for card in answer["cards"]:
        text = text.replace(card["uuid"], "UUID")
        for suggestion in card.get("suggestions", []):
            text = text.replace(suggestion["uuid"], "UUID")
    loaded: list[dict[str, Any]] = json.loads(text)
    return loaded


def test_production_ignores_the_flag_and_demo_honours_it() -> None:
    as_of = date(2026, 6, 15)
    body = _body(POSITIVE)
    production = create_app(clock=lambda: as_of, auth="off", database_url="sqlite://", record_cards=False)
    answer = production.test_client().post(f"{URL}?explain=true", json=body).get_json()
    assert set(answer) == {"cards"}
    assert "explain" not in json.dumps(answer)
    demo = create_app(
        clock=lambda: as_of, auth="off", database_url="sqlite://", record_cards=False, demo=True
    )
    explained = demo.test_client().post(f"{URL}?explain=true", json=body).get_json()
    trace = explained["extension"][EXPLAIN]
    assert trace["decision"][0] == "refer: 1 recent fracture(s) (L1)"
    fx = next(r for r in trace["resources"] if r["ref"] == "Condition/s01-fx")
    assert fx["codes"] == "icd-10-cm M80.08XA"
    assert fx["matched"][0].startswith("trigger: osteoporotic")
    assert _cards_without_uuids(explained) == _cards_without_uuids(answer)
    plain = demo.test_client().post(URL, json=body).get_json()
    assert set(plain) == {"cards"}  # demo without the flag: the plain answer


def test_the_trace_never_changes_a_decision_and_never_reaches_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    checked = 0
    for folder in SCENARIOS:
        scenario = read_scenario(folder)
        if scenario.hook != "patient-view" or scenario.as_of is None:
            continue
        patients = [r["id"] for r in scenario.resources if r.get("resourceType") == "Patient"]
        if len(patients) != 1:
            continue
        client = client_on(scenario.as_of, database_url="sqlite://", record_cards=False, demo=True)
        body = hook_request_for(scenario.resources, REFERRAL, patients[0])
        plain = client.post(URL, json=body).get_json()
        explained = client.post(f"{URL}?explain=true", json=body).get_json()
        assert _cards_without_uuids(explained) == _cards_without_uuids(plain), folder.name
        assert explained["extension"][EXPLAIN]["lines"], folder.name
        checked += 1
    assert checked > 80
    logged = "\n".join(JsonFormatter().format(r) + r.getMessage() for r in caplog.records)
    assert "hook answered" in logged  # the calls were logged...
    for word in ("set aside", "matched", "trigger", "Condition/", "M80.08XA"):  # ...never the trace
        assert word not in logged


@pytest.fixture
def production_service() -> Iterator[str]:
    as_of = date(2026, 6, 15)
    app = create_app(
        clock=lambda: as_of, allow_http_fhir=True, auth="off", database_url="sqlite://", record_cards=False
    )
    with in_thread(app) as url:
        yield url


@pytest.fixture
def demo_service() -> Iterator[str]:
    """As `make sandbox` runs it: demo mode, plain-http FHIR allowed."""
    as_of = date(2026, 6, 15)
    app = create_app(
        clock=lambda: as_of,
        allow_http_fhir=True,
        auth="off",
        database_url="sqlite://",
        record_cards=False,
        demo=True,
    )
    with in_thread(app) as url:
        yield url


def test_try_explain_through_a_demo_mode_service(
    fhir_server: FhirTestServer, demo_service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_try(fhir_server, "--service-url", demo_service)) == 0
    out, err = capsys.readouterr()
    assert set(json.loads(out)) == {"cards"}  # the extension is printed as text, not left in the answer
    assert "Condition/s01-fx [icd-10-cm M80.08XA]: matched trigger: osteoporotic fracture L1" in err
    assert "decision: refer: 1 recent fracture(s) (L1)" in err


def _try(server: FhirTestServer, *extra: str) -> list[str]:
    return ["try", "--fhir-server", server.base_url, "--patient", "s01-patient", "--explain", *extra]


def test_try_explain_in_process_against_a_fhir_server(
    fhir_server: FhirTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_try(fhir_server, "--as-of", "2026-06-15")) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)["cards"]) == 1
    assert "Condition/s01-fx [icd-10-cm M80.08XA]: matched trigger: osteoporotic fracture L1" in err
    assert "ImagingStudy/s01-mri: matched imaging: spine MR" in err
    assert "decision: refer: 1 recent fracture(s) (L1)" in err


def test_try_explain_against_a_production_service_says_there_is_none(
    fhir_server: FhirTestServer, production_service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_try(fhir_server, "--service-url", production_service)) == 0
    out, err = capsys.readouterr()
    assert set(json.loads(out)) == {"cards"}
    assert "no explanation" in err
    assert "demo mode only" in err
    assert "Condition/" not in err
