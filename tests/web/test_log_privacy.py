"""Every fixture scenario with auth on (ES384 JWTs): no log line holds the JWT, the FHIR access token,
the patient id or a patient name, whether the call is answered or refused."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.builders import SCENARIOS
from support.fixture_calls import fixture_call
from support.tokens import BASE, Ehr, issuer_file

from cds_service.app import create_app
from cds_service.web.logs import JsonFormatter


def _names(resources: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for resource in resources:
        if resource.get("resourceType") == "Patient":
            for name in resource.get("name", []):
                found.update(n for n in [name.get("family"), *name.get("given", [])] if isinstance(n, str))
    return found


def test_no_log_line_holds_tokens_patient_ids_or_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ehr = Ehr()
    secrets: set[str] = set()
    answered = refused = 0
    caplog.set_level(logging.DEBUG)
    issuers = issuer_file(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks})
    clients: dict[date, FlaskClient] = {}  # one app per as-of date, shared by its scenarios
    for folder in SCENARIOS:
        call = fixture_call(folder)
        meta, scenario, service, as_of = call.meta, call.scenario, call.service, call.as_of
        if as_of not in clients:
            app = create_app(
                clock=lambda as_of=as_of: as_of,
                trusted_issuers=issuers,
                public_base_url=BASE,
                database_url=f"sqlite:///{tmp_path}/privacy.sqlite",
            )
            clients[as_of] = app.test_client()
        client = clients[as_of]
        access_token = f"fhir-access-{uuid.uuid4().hex}"
        body = call.body
        body["fhirServer"] = "https://ehr.example.org/fhir"
        body["fhirAuthorization"] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "scope": "patient/*.read",
        }
        token = ehr.token(f"{BASE}/cds-services/{service.id}")
        secrets |= {token, token.split(".")[2], access_token, call.patient_id, *_names(scenario.resources)}
        url = f"/cds-services/{service.id}"
        response = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, folder.name
        assert len(response.get_json()["cards"]) == meta["expected"]["cards"], folder.name
        answered += 1
        replay = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        wrong = client.post(url, json=body, headers={"Authorization": f"Bearer {ehr.token('https://x')}"})
        assert (replay.status_code, wrong.status_code) == (401, 401)
        refused += 2
    lines = [JsonFormatter().format(record) for record in caplog.records]
    lines += [record.getMessage() for record in caplog.records]
    assert answered == len(SCENARIOS) >= 30
    assert sum('"hook answered"' in line for line in lines) == answered
    assert sum('"authentication refused"' in line for line in lines) == refused
    leaks = sorted({secret for secret in secrets for line in lines if secret in line})
    assert leaks == []
