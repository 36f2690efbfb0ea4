"""The demo's patients: fixture scenarios turned into the requests an EHR would send today.

Scenarios are read from the fixtures shipped in the package (`cds_service.fixtures`, the checkout's
`fhir_fixtures/`) or from `CDS_FIXTURES_DIR`. Dates move by `today - asOf`, so a fracture that was
two weeks old on the scenario's as-of date is two weeks old today.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson

from cds_service.offline import hook_request_for, patient_ids, read_scenario, rebase_dates
from cds_service.services import ServiceDefinition

_SAMPLE_ORDER = "sample-draft-order.json"


@dataclass(frozen=True)
class DemoPatient:
    """One line of the preview page's patient list."""

    name: str
    description: str
    hook: str


def packaged_fixtures() -> Path:
    return Path(str(files("cds_service.fixtures")))


def list_patients(root: Path) -> list[DemoPatient]:
    """Every scenario folder with a scenario.json, in folder order."""
    patients = []
    for folder in sorted(p for p in root.iterdir() if (p / "scenario.json").is_file()):
        meta = orjson.loads((folder / "scenario.json").read_bytes())
        patients.append(
            DemoPatient(folder.name, str(meta.get("description", "")), str(meta.get("hook", "patient-view")))
        )
    return patients


def sample_draft_order() -> dict[str, Any]:
    """A drafted kyphoplasty order (CPT 22514): what the order-sign preview signs by default."""
    order: dict[str, Any] = orjson.loads((files("cds_service.preview") / _SAMPLE_ORDER).read_bytes())
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
