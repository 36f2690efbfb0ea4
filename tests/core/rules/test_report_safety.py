"""Radiology report text through the HTTP API (clinical-rules §7): hostile text is capped or
skipped, never a 500 and never slow; report text never reaches the logs."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.builders import REFERRAL_URL, SCENARIOS, Call, condition, hook_body

from cds_service.app import create_app
from cds_service.demo.scenario import hook_request_for, patient_ids, read_scenario
from cds_service.hooks.catalogue import REFERRAL

RADIOLOGY = [{"coding": [{"system": "http://loinc.org", "code": "LP29684-5"}]}]


def report(rid: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "category": RADIOLOGY,
        "code": {"text": "MRI lumbar spine"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-15",
        **extra,
    }


ACUTE = "IMPRESSION: Acute L1 compression fracture with marrow edema."
HOSTILE: dict[str, dict[str, Any]] = {
    "1 MB conclusion": {"conclusion": "Compression fracture of T12 and L1 (" * 30_000},
    "binary in base64": {
        "presentedForm": [
            {"contentType": "text/plain", "data": base64.b64encode(bytes(range(256)) * 400).decode()}
        ]
    },
    "HTML with scripts": {
        "presentedForm": [
            {
                "contentType": "text/html; charset=UTF-8",
                "data": base64.b64encode(
                    b"<script>alert('L1 compression fracture')</script><p>No fracture.</p>" * 500
                ).decode(),
            }
        ]
    },
    "deep nesting": {"presentedForm": [{"data": [[[[[[[[[[[["x"]]]]]]]]]]]]}]},
    "wrong types": {"conclusion": {"text": 5}, "presentedForm": "text/plain"},
    "url only": {"presentedForm": [{"contentType": "text/plain", "url": "https://example.org/r.txt"}]},
    "UTF-16 odd bytes, no BOM": {
        "presentedForm": [
            {"contentType": "text/plain; charset=utf-16", "data": base64.b64encode(b"\xd8").decode()}
        ]
    },
}


@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le", "utf-32-le"])
def test_wide_text_without_a_byte_order_mark_is_read(call: Call, encoding: str) -> None:
    """`charset=utf-16` with no BOM (Python's codec refuses it): read in the order the bytes show."""
    data = base64.b64encode(ACUTE.encode(encoding)).decode()
    form = [{"contentType": f"text/plain; charset={encoding[:6]}", "data": data}]
    answer = call(
        [condition("op", "M81.0", onset="2019-05-01")], reports=[report("wide", presentedForm=form)]
    )
    found = answer["cards"][0]["extension"]["vertebral-augmentation-cds/finding"]
    assert found["fractures"][0]["level"] == "L1"
    assert "unreadable" not in found


@pytest.mark.parametrize("shape", HOSTILE, ids=list(HOSTILE))
def test_hostile_report_text_is_capped_or_skipped(client: FlaskClient, shape: str) -> None:
    body = hook_body(
        [condition("op", "M81.0", onset="2019-05-01")],
        reports=[report("bad", **HOSTILE[shape]), report("good", conclusion=ACUTE)],
    )
    started = time.perf_counter()
    response = client.post(REFERRAL_URL, json=body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, shape
    (card,) = response.get_json()["cards"]
    found = card["extension"]["vertebral-augmentation-cds/finding"]
    assert "DiagnosticReport/good" in found["fractures"][0]["evidence"]
    assert elapsed < 2.0, shape  # a bound against runaway work, not a speed measurement


def test_url_only_report_is_counted_unreadable(call: Call) -> None:
    body_reports = [report("url", **HOSTILE["url only"]), report("good", conclusion=ACUTE)]
    answer = call([condition("op", "M81.0", onset="2019-05-01")], reports=body_reports)
    found = answer["cards"][0]["extension"]["vertebral-augmentation-cds/finding"]
    assert found["unreadable"] == {"DiagnosticReport": 1}
    assert "could not be read" in answer["cards"][0]["detail"]


def _report_texts(folder: Path) -> list[str]:
    texts = []
    for resource in read_scenario(folder).resources:
        if resource.get("resourceType") != "DiagnosticReport":
            continue
        if isinstance(resource.get("conclusion"), str):
            texts.append(resource["conclusion"])
        for form in resource.get("presentedForm", []):
            if isinstance(form, dict) and isinstance(form.get("data"), str):
                try:
                    texts.append(base64.b64decode(form["data"]).decode("utf-8", "replace"))
                except ValueError:
                    continue
    return texts


REPORT_SCENARIOS = [f for f in SCENARIOS if "-report-" in f.name]


def test_report_text_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every report fixture through the API at DEBUG: no sentence of any report is in any log line."""
    lines: list[str] = []
    sentences: set[str] = set()
    for folder in REPORT_SCENARIOS:
        meta = json.loads((folder / "scenario.json").read_text())
        app = create_app(
            clock=lambda meta=meta: date.fromisoformat(meta["asOf"]),
            auth="off",
            log_level="DEBUG",
        )
        resources = read_scenario(folder).resources
        (patient_id,) = patient_ids(resources)
        body = hook_request_for(resources, REFERRAL, patient_id)
        with caplog.at_level(logging.DEBUG):
            assert app.test_client().post(REFERRAL_URL, json=body).status_code == 200
        lines.extend(r.getMessage() + " " + json.dumps(r.__dict__, default=str) for r in caplog.records)
        caplog.clear()
        for text in _report_texts(folder):
            sentences.update(s.strip() for s in text.replace("\n", ". ").split(". ") if len(s.strip()) > 25)
    assert sentences
    logged = "\n".join(lines)
    leaked = [s for s in sentences if s in logged]
    assert leaked == []
