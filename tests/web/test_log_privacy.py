"""Every fixture scenario with auth on (ES384 JWTs): no log line holds the JWT, the FHIR access token,
the patient id or a patient name, whether the call is answered or refused."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.builders import FIXTURES
from support.tokens import BASE, Ehr, issuer_file

from cds_service.app import create_app
from cds_service.demo.scenario import hook_request_for, read_scenario
from cds_service.hooks.catalogue import SERVICES
from cds_service.web.logs import JsonFormatter

SCENARIOS = sorted(p for p in FIXTURES.iterdir() if (p / "scenario.json").exists())


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
        meta = json.loads((folder / "scenario.json").read_text())
        as_of = date.fromisoformat(meta["asOf"])
        if as_of not in clients:
            app = create_app(
                clock=lambda as_of=as_of: as_of,
                trusted_issuers=issuers,
                public_base_url=BASE,
                database_url=f"sqlite:///{tmp_path}/privacy.sqlite",
            )
            clients[as_of] = app.test_client()
        client = clients[as_of]
        scenario = read_scenario(folder)
        service = next(s for s in SERVICES.values() if s.hook == scenario.hook)
        (patient,) = [r for r in scenario.resources if r["resourceType"] == "Patient"]
        access_token = f"fhir-access-{uuid.uuid4().hex}"
        body = hook_request_for(scenario.resources, service, patient["id"], context=scenario.context)
        body["fhirServer"] = "https://ehr.example.org/fhir"
        body["fhirAuthorization"] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "scope": "patient/*.read",
        }
        token = ehr.token(f"{BASE}/cds-services/{service.id}")
        secrets |= {token, token.split(".")[2], access_token, patient["id"], *_names(scenario.resources)}
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
