"""Playing the EHR offline: a FHIR export becomes the CDS Hooks request an EHR would send."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_service.core.record.fhir_json import json_belongs_to
from cds_service.hooks.catalogue import ServiceDefinition

_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(.*)$")
_DATE_IN_TEXT = re.compile(r"(?<![\d-])\d{4}-\d{2}-\d{2}(?!\d)")


@dataclass(frozen=True)
class Scenario:
    """Resources from a file or fixture folder, with the fixture's as-of date, hook and hook
    context (draft orders) when it has them."""

    resources: list[dict[str, Any]]
    as_of: date | None
    hook: str = "patient-view"
    context: Mapping[str, Any] = field(default_factory=dict)


def _from_json(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        entries = doc.get("entry") or []
        return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if isinstance(doc, dict) and "resourceType" in doc:
        return [doc]
    raise ValueError("expected a FHIR Bundle or resource")


def read_scenario(path: Path) -> Scenario:
    """A Bundle (any type), a single resource, NDJSON, or a fixture folder (bundle.json + scenario.json)."""
    meta: dict[str, Any] = {}
    if path.is_dir():
        meta_path = path / "scenario.json"
        if meta_path.exists():
            meta = orjson.loads(meta_path.read_bytes())
        path = path / "bundle.json"
    raw = path.read_bytes()
    if path.suffix == ".ndjson":
        resources = [r for line in raw.splitlines() if line.strip() for r in _from_json(orjson.loads(line))]
    else:
        resources = _from_json(orjson.loads(raw))
    as_of = date.fromisoformat(meta["asOf"]) if "asOf" in meta else None
    return Scenario(resources, as_of, meta.get("hook", "patient-view"), meta.get("context", {}))


def patient_ids(resources: Iterable[Mapping[str, Any]]) -> list[str]:
    return [r["id"] for r in resources if r.get("resourceType") == "Patient" and isinstance(r.get("id"), str)]


def hook_request_for(
    resources: list[dict[str, Any]],
    service: ServiceDefinition,
    patient_id: str,
    *,
    user_id: str = "Practitioner/example",
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A full-prefetch request: one searchset Bundle per prefetch key, as an EHR would send."""
    prefetch: dict[str, Any] = {}
    mine = [r for r in resources if json_belongs_to(r, patient_id)]
    for key, query in service.prefetch.items():
        found = [r for r in mine if r.get("resourceType") == query.resource_type]
        if query.resource_type == "Patient" and "{{" in query.template and "?" not in query.template:
            prefetch[key] = found[0] if found else None
        else:
            prefetch[key] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(found),
                "entry": [{"fullUrl": f"{r['resourceType']}/{r.get('id')}", "resource": r} for r in found],
            }
    return {
        "hook": service.hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": user_id, "patientId": patient_id, **(context or {})},
        "prefetch": prefetch,
    }


def rebase_dates(value: Any, days: int) -> Any:
    """Shift every FHIR date / dateTime in a JSON tree by `days`, keeping time and zone as written."""
    if isinstance(value, dict):
        return {k: rebase_dates(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [rebase_dates(v, days) for v in value]
    if isinstance(value, str):
        match = _DATE.match(value)
        if match and (not match.group(2) or match.group(2).startswith("T")):
            try:
                shifted = date.fromisoformat(match.group(1)) + timedelta(days=days)
            except ValueError:
                return value
            return shifted.isoformat() + match.group(2)
    return value


def _shift(match: re.Match[str], days: int) -> str:
    try:
        return (date.fromisoformat(match.group(0)) + timedelta(days=days)).isoformat()
    except ValueError:
        return match.group(0)


def rebase_text(text: str, days: int) -> str:
    """Shift every full ISO date written in prose (a fixture's description) by `days`, as rebase_dates
    shifts the record, so the words quote the dates the card shows."""
    return _DATE_IN_TEXT.sub(lambda m: _shift(m, days), text)
