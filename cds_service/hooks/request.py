"""Validating a CDS Hooks request before anything reads it (api-contract.md, Request handling); the
body bytes themselves are read by `web.body`, as for every endpoint."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import msgspec

from cds_service.web.body import bad_request, parse_json_body

if TYPE_CHECKING:
    from cds_service.hooks.catalogue import ServiceDefinition

# FHIR id syntax: ids end up in references and URLs, so anything else is refused up front.
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    patient_id: str
    user_id: str | None
    fhir_server: str | None
    access_token: str | None
    context: Mapping[str, Any]
    prefetch: Mapping[str, Any]
    orders: tuple[Mapping[str, Any], ...] = ()
    """order hooks: the draft orders the hook looks at (order-select: the selected ones only)."""
    allowed_fhir_origins: tuple[str, ...] | None = None
    """The calling issuer's registered fhirServer origins, when it has some (None: any origin)."""


class _Envelope(TypedDict, total=False):
    """The request's top level; prefetch values stay undecoded slices of the body (msgspec.Raw)."""

    hook: Any
    hookInstance: Any
    context: Any
    fhirServer: Any
    fhirAuthorization: Any
    prefetch: dict[str, msgspec.Raw]


_envelope_decoder = msgspec.json.Decoder(_Envelope)


def parse_hook_body(raw: bytes) -> Any:
    """A hook call's body as a dict whose prefetch values are raw slices of the body. Odd shapes,
    bad bytes and deep nesting fall back to the plain parser, which reads up to orjson's limits and
    says precisely what is wrong."""
    if not raw:
        raise bad_request("request body is empty: a CDS Hooks request is a JSON object")
    try:
        return _envelope_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return parse_json_body(raw)


def _optional_str(container: Mapping[str, Any], key: str, where: str) -> str | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{where}{key} must be a string")
    return value


def parse_hook_request(body: Any, service: ServiceDefinition) -> HookRequest:
    """Check the fields every hook call needs; order hooks check their own context on top."""
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    hook = body.get("hook")
    if not isinstance(hook, str) or not hook:
        raise bad_request("hook is required")
    if hook != service.hook:
        raise bad_request(f"hook must be '{service.hook}' for service {service.id}")
    hook_instance = body.get("hookInstance")
    if not isinstance(hook_instance, str) or not hook_instance.strip() or len(hook_instance) > 256:
        raise bad_request("hookInstance is required (a string of at most 256 characters)")
    context = body.get("context")
    if not isinstance(context, dict):
        raise bad_request("context is required and must be an object")
    patient_id = context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise bad_request("context.patientId is required")
    if not _FHIR_ID.fullmatch(patient_id):  # fullmatch: `$` would let a trailing newline through
        raise bad_request("context.patientId is not a valid FHIR id")
    user_id = _optional_str(context, "userId", "context.")
    fhir_server = _optional_str(body, "fhirServer", "")
    authorization = body.get("fhirAuthorization")
    access_token: str | None = None
    if authorization is not None:
        if not isinstance(authorization, dict):
            raise bad_request("fhirAuthorization must be an object")
        access_token = _optional_str(authorization, "access_token", "fhirAuthorization.")
    prefetch = body.get("prefetch")
    if prefetch is None:
        prefetch = {}
    elif not isinstance(prefetch, dict):
        raise bad_request("prefetch must be an object")
    orders = _orders_in_scope(context, hook) if hook in ("order-select", "order-sign") else ()
    return HookRequest(
        hook, hook_instance, patient_id, user_id, fhir_server, access_token, context, prefetch, orders
    )


def _orders_in_scope(context: Mapping[str, Any], hook: str) -> tuple[Mapping[str, Any], ...]:
    """draftOrders must be a Bundle (of any type) with entries; selections must point into it."""
    bundle = context.get("draftOrders")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise bad_request("context.draftOrders is required and must be a FHIR Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise bad_request("context.draftOrders has no entries")
    orders = [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if len(orders) != len(entries):
        raise bad_request("context.draftOrders has an entry without a resource")
    if hook == "order-sign":
        return tuple(orders)
    selections = context.get("selections")
    if not isinstance(selections, list) or not selections or not all(isinstance(s, str) for s in selections):
        raise bad_request("context.selections is required for order-select: a list of Type/id references")
    by_ref = {f"{o.get('resourceType')}/{o.get('id')}": o for o in orders}
    if any(s not in by_ref for s in selections):
        raise bad_request("context.selections names an order that is not in context.draftOrders")
    return tuple(by_ref[s] for s in dict.fromkeys(selections))
