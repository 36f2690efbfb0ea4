"""Reading prefetch values: a Bundle (searchset, any size), one resource, null, or an
OperationOutcome (the client failed: treated as missing, CDS Hooks 2.0.1 §prefetch)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import msgspec
import orjson

from cds_service.core.resource_view import Resource, as_resource
from cds_service.hook_request import HookRequest
from cds_service.outcome import CdsError
from cds_service.services import PrefetchQuery, ServiceDefinition

MISSING = None


@dataclass
class RecordData:
    """Raw resources by type, and the optional types that could not be had."""

    resources: dict[str, list[Resource]] = field(default_factory=dict)
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


class _Entry(TypedDict, total=False):
    resource: msgspec.Raw


class _Bundle(TypedDict, total=False):
    resourceType: Any
    entry: list[_Entry]


_bundle_decoder = msgspec.json.Decoder(_Bundle)


def _fast_resources(value: msgspec.Raw, resource_type: str) -> list[Resource | None] | None:
    """Resources of a raw prefetch value without parsing them; None for shapes that need the
    careful path (null, an OperationOutcome, a malformed Bundle)."""
    try:
        head = _bundle_decoder.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    kind = head.get("resourceType")
    if kind == "Bundle":
        return [
            Resource.from_raw(e["resource"], resource_type) for e in head.get("entry", ()) if "resource" in e
        ]
    if kind == "OperationOutcome" or not isinstance(kind, str):
        return None
    return [Resource.from_raw(value, resource_type)]


def resources_from_value(
    value: Any, query: PrefetchQuery, patient_id: str, skipped: Counter[str]
) -> list[Resource] | None:
    """Resources of the query's type from one prefetch value; None when it must count as missing."""
    if isinstance(value, msgspec.Raw):
        fast = _fast_resources(value, query.resource_type)
        if fast is not None:
            return _keep(fast, query, patient_id, skipped)
        try:
            value = orjson.loads(memoryview(value))
        except (orjson.JSONDecodeError, RecursionError):
            raise CdsError(
                400, "invalid", f"prefetch value for {query.resource_type} is not valid JSON"
            ) from None
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
    return _keep([as_resource(c) for c in candidates], query, patient_id, skipped)


def _keep(
    candidates: list[Resource | None], query: PrefetchQuery, patient_id: str, skipped: Counter[str]
) -> list[Resource]:
    """The query's resource type only, and never another patient's resources."""
    kept: list[Resource] = []
    for resource in candidates:
        if resource is None or resource.resource_type != query.resource_type:
            continue
        if query.resource_type == "Patient":
            if resource.light.get("id") not in (None, patient_id):
                skipped["Patient other-patient"] += 1
                continue
        elif _other_patient(resource.light, patient_id):
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
                views = (as_resource(r) for r in fetched)
                data.resources.setdefault(missing[key].resource_type, []).extend(v for v in views if v)
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
