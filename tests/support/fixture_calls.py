"""A fixture scenario answered as the EHR would call it, at its as-of date: one app per as-of date
(and settings), shared by every test that asks, instead of an app per scenario."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from cds_service.app import create_app
from cds_service.demo.scenario import Scenario, hook_request_for, patient_ids, read_scenario
from cds_service.hooks.catalogue import SERVICES, ServiceDefinition


class Clock:
    """A clock tests set: one app serves many scenarios, each test setting the evaluation day
    (apps hold a thread pool, so building one per scenario costs)."""

    today = date(2026, 1, 1)

    def __call__(self) -> date:
        return self.today


@dataclass(frozen=True)
class FixtureCall:
    meta: dict[str, Any]
    scenario: Scenario
    service: ServiceDefinition
    patient_id: str
    body: dict[str, Any]

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.meta["asOf"])

    @property
    def url(self) -> str:
        return f"/cds-services/{self.service.id}"


def fixture_call(folder: Path) -> FixtureCall:
    """The full-prefetch request for the fixture's one patient, to the service of its hook."""
    meta = json.loads((folder / "scenario.json").read_text())
    scenario = read_scenario(folder)
    service = next(s for s in SERVICES.values() if s.hook == scenario.hook)
    (patient_id,) = patient_ids(scenario.resources)
    body = hook_request_for(scenario.resources, service, patient_id, context=scenario.context)
    return FixtureCall(meta, scenario, service, patient_id, body)


@cache
def client_on(as_of: date, **settings: Any) -> FlaskClient:
    """A test client of an app whose clock says `as_of` (settings must be hashable values)."""
    return create_app(clock=lambda: as_of, auth="off", **settings).test_client()


def answer(folder: Path, **settings: Any) -> tuple[FixtureCall, dict[str, Any]]:
    """The fixture's call and the service's JSON answer (asserting 200)."""
    call = fixture_call(folder)
    response = client_on(call.as_of, **settings).post(call.url, json=call.body)
    assert response.status_code == 200, (folder.name, response.get_data(as_text=True))
    found: dict[str, Any] = response.get_json()
    return call, found
