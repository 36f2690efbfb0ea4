"""Reading prefetch values: a Bundle (searchset, any size), one resource, null, or an
OperationOutcome (the client failed: treated as missing, CDS Hooks 2.0.1 §prefetch)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_service.hook_request import HookRequest
from cds_service.outcome import CdsError
from cds_service.services import PrefetchQuery, ServiceDefinition

MISSING = None


@dataclass
class RecordData:
    """Raw resources by type, and the optional types that could not be had."""

    resources: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)
    skipped: Counter[str] = field(default_factory=Counter)


# A fetcher gets the keys that are missing and returns, per key, resources or None (failed).
Fetcher = Callable[[HookRequest, Mapping[str, PrefetchQuery]], Mapping[str, list[Mapping[str, Any]] | None]]


def _other_patient(resource: Mapping[str, Any], patient_id: str) -> bool:
    """True when the resource plainly points at another patient (a misrouted prefetch)."""
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, Mapping):
            reference = ref.get("reference")
            if isinstance(reference, str) and "Patient/" in reference:
                return reference.rsplit("Patient/", 1)[1].split("/", 1)[0] != patient_id
    return False


def resources_from_value(
    value: Any, query: PrefetchQuery, patient_id: str, skipped: Counter[str]
) -> list[Mapping[str, Any]] | None:
    """Resources of the query's type from one prefetch value; None when it must count as missing."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise CdsError(
            400, "invalid", f"prefetch value for {query.resource_type} must be a FHIR resource or null"
        )
    resource_type = value.get("resourceType")
    if resource_type == "OperationOutcome":
        return MISSING
    if resource_type == "Bundle":
        entries = value.get("entry")
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise CdsError(
                400, "invalid", f"prefetch Bundle for {query.resource_type} has a malformed entry list"
            )
        candidates = [e.get("resource") for e in entries if isinstance(e, dict)]
    else:
        candidates = [value]
    kept: list[Mapping[str, Any]] = []
    for resource in candidates:
        if not isinstance(resource, dict) or resource.get("resourceType") != query.resource_type:
            continue
        if query.resource_type == "Patient":
            if resource.get("id") not in (None, patient_id):
                skipped["Patient other-patient"] += 1
                continue
        elif _other_patient(resource, patient_id):
            skipped[f"{query.resource_type} other-patient"] += 1
            continue
        kept.append(resource)
    return kept


def gather_record(
    request: HookRequest, service: ServiceDefinition, fetcher: Fetcher | None = None
) -> RecordData:
    """Prefetch first; what is missing is fetched when possible; required data missing -> 412."""
    data = RecordData()
    missing: dict[str, PrefetchQuery] = {}
    for key, query in service.prefetch.items():
        found = (
            resources_from_value(request.prefetch.get(key), query, request.patient_id, data.skipped)
            if key in request.prefetch
            else MISSING
        )
        if found is MISSING:
            missing[key] = query
        else:
            data.resources.setdefault(query.resource_type, []).extend(found)
    if missing and fetcher is not None and request.fhir_server:
        for key, fetched in fetcher(request, missing).items():
            if fetched is not None:
                data.resources.setdefault(missing[key].resource_type, []).extend(fetched)
                del missing[key]
    required = sorted(key for key, query in missing.items() if query.required)
    if required:
        raise CdsError(
            412,
            "incomplete",
            f"prefetch missing for {', '.join(required)} and no fhirServer to fetch it from",
        )
    data.unavailable.update(query.resource_type for query in missing.values())
    return data
