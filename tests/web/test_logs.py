"""Logs are JSON lines with counts and timings, and hold no token or patient identifier."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient
from support.builders import REFERRAL_URL, condition, hook_body

from cds_service.web.logs import JsonFormatter


def test_hook_call_logs_one_json_line_with_counts_and_skips(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    bad = condition("bad", "M80.08XA", onsetDateTime="not-a-date")
    body = hook_body([condition("fx", "M80.08XA"), bad], fhirAuthorization={"access_token": "TOKEN-123"})
    body["context"]["patientId"] = "p1"
    with caplog.at_level(logging.INFO, logger="cds_service"):
        client.post(REFERRAL_URL, json=body)
    (record,) = [r for r in caplog.records if r.getMessage() == "hook answered"]
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["service"] == "vertebral-augmentation-referral"
    assert entry["hookInstance"] == body["hookInstance"]
    assert entry["cards"] == 1
    assert entry["unreadable"] == {"Condition": 1}
    assert entry["skipped"] == {}
    assert entry["resources"]["Condition"] == 2
    assert isinstance(entry["ms"], float)
    assert "TOKEN-123" not in line
    assert "Patient/p1" not in line
    assert '"p1"' not in line
