"""The demo's patients: fixture scenarios turned into the requests an EHR would send today.

Scenarios are read from the fixtures shipped in the package (`cds_service.fixtures`, the checkout's
`fhir_fixtures/`) or from `CDS_FIXTURES_DIR`. Dates move by `today - asOf`, so a fracture that was
two weeks old on the scenario's as-of date is two weeks old today.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson

from cds_service.demo.scenario import hook_request_for, patient_ids, read_scenario, rebase_dates, rebase_text
from cds_service.hooks.catalogue import ServiceDefinition

_SAMPLE_ORDER = "sample-draft-order.json"


@dataclass(frozen=True)
class Banner:
    """The chart header an EHR shows: who the patient is."""

    name: str
    age: str
    sex: str


@dataclass(frozen=True)
class DemoPatient:
    """One line of the preview page's patient list (dates as written in the fixture)."""

    name: str
    description: str
    hook: str
    as_of: date | None = None
    patient: Mapping[str, Any] = field(default_factory=dict)

    def shift(self, today: date) -> int:
        return (today - self.as_of).days if self.as_of else 0

    def description_on(self, today: date) -> str:
        """The description with its dates moved like the record's, so it quotes what the card shows."""
        return rebase_text(self.description, self.shift(today))

    def banner_on(self, today: date) -> Banner:
        return patient_banner(rebase_dates(dict(self.patient), self.shift(today)), today)


def _person_name(patient: Mapping[str, Any]) -> str:
    names = [n for n in patient.get("name") or [] if isinstance(n, Mapping)]
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if official is None:
        return str(patient.get("id") or "Unknown patient")
    if isinstance(official.get("text"), str) and official["text"].strip():
        return str(official["text"]).strip()
    parts = [*(official.get("given") or []), official.get("family") or ""]
    return " ".join(str(p) for p in parts if isinstance(p, str) and p) or str(patient.get("id"))


def patient_banner(patient: Mapping[str, Any], today: date) -> Banner:
    """Name, age and sex from a Patient resource (its dates already rebased to `today`)."""
    born = patient.get("birthDate")
    age = "age unknown"
    if isinstance(born, str):
        try:
            birth = date.fromisoformat(born[:10])
        except ValueError:
            birth = None
        if birth is not None:
            years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
            age = f"{years} y"
    gender = patient.get("gender")
    return Banner(_person_name(patient), age, gender if isinstance(gender, str) else "sex unknown")


def packaged_fixtures() -> Path:
    return Path(str(files("cds_service.fixtures")))


def list_patients(root: Path) -> list[DemoPatient]:
    """Every scenario folder with a scenario.json, in folder order."""
    patients = []
    for folder in sorted(p for p in root.iterdir() if (p / "scenario.json").is_file()):
        meta = orjson.loads((folder / "scenario.json").read_bytes())
        try:
            scenario = read_scenario(folder)
        except (OSError, ValueError):  # a broken hand-made scenario is still listed; its request says why
            scenario = None
        as_of = scenario.as_of if scenario else None
        found = [r for r in scenario.resources if r.get("resourceType") == "Patient"] if scenario else []
        patients.append(
            DemoPatient(
                folder.name,
                str(meta.get("description", "")),
                str(meta.get("hook", "patient-view")),
                as_of,
                found[0] if found else {"id": folder.name},
            )
        )
    return patients


def sample_draft_order() -> dict[str, Any]:
    """A drafted kyphoplasty order (CPT 22514): what the order-sign preview signs by default."""
    order: dict[str, Any] = orjson.loads((files("cds_service.demo") / _SAMPLE_ORDER).read_bytes())
    return order


def demo_request(
    root: Path, name: str, service: ServiceDefinition, today: date, sample_order: Mapping[str, Any]
) -> dict[str, Any]:
    """The full-prefetch request for one scenario, rebased to `today`.

    Order hooks sign the scenario's own draft orders when it has them, else the sample order
    written for its patient.
    """
    scenario = read_scenario(root / name)
    shift = (today - scenario.as_of).days if scenario.as_of else 0
    resources = rebase_dates(scenario.resources, shift)
    patients = patient_ids(resources)
    if not patients:
        raise ValueError(f"scenario {name} has no Patient resource")
    patient = patients[0]
    context: dict[str, Any] = {}
    if service.hook != "patient-view":
        context = dict(rebase_dates(scenario.context, shift))
        if "draftOrders" not in context:
            order = copy.deepcopy(dict(sample_order))
            order["subject"] = {"reference": f"Patient/{patient}"}
            order["authoredOn"] = today.isoformat()
            context["draftOrders"] = {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": order}],
            }
        if service.hook == "order-select" and "selections" not in context:
            entries = context["draftOrders"]["entry"]
            context["selections"] = [
                f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries
            ]
    return hook_request_for(resources, service, patient, context=context)
