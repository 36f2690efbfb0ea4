"""Validating a CDS Hooks request body before anything reads it (api-contract.md, Request handling)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import msgspec
import orjson

from cds_service.outcome import CdsError
from cds_service.services import ServiceDefinition

# FHIR id syntax: ids end up in references and URLs, so anything else is refused up front.
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_JSON_TYPES = ("application/json", "application/fhir+json")


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


def _bad(diagnostics: str) -> CdsError:
    return CdsError(400, "invalid", diagnostics)


def check_content_type(mimetype: str) -> None:
    if mimetype and mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
        raise _bad("Content-Type must be application/json")


class _Envelope(TypedDict, total=False):
    """The request's top level; prefetch values stay undecoded slices of the body (msgspec.Raw)."""

    hook: Any
    hookInstance: Any
    context: Any
    fhirServer: Any
    fhirAuthorization: Any
    prefetch: dict[str, msgspec.Raw]


_envelope_decoder = msgspec.json.Decoder(_Envelope)


def read_body(environ: Mapping[str, Any], content_length: int | None, max_bytes: int) -> bytes | None:
    """A chunked body read here, with its framing checked and its size capped: a bad chunk is a 400
    and an over-limit body a 413 (never cut at the limit and parsed). None: not chunked (the caller
    reads it the usual way; a Content-Length over the limit is already a 413)."""
    if content_length is not None or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    stream = environ["wsgi.input"]
    body = bytearray()
    try:
        while chunk := stream.read(64 * 1024):
            body += chunk
            if len(body) > max_bytes:
                raise CdsError(413, "too-costly", f"request body over {max_bytes} bytes")
    except CdsError:
        raise
    except Exception:  # the server's chunk parser (gunicorn.http.errors.*), or the client went away
        raise _bad("request body has invalid chunked framing") from None
    return bytes(body)


def request_body() -> bytes:
    """The current Flask request's body, chunked or not, within MAX_CONTENT_LENGTH."""
    from flask import current_app, request

    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    chunked = read_body(request.environ, request.content_length, limit)
    return request.get_data(cache=False) if chunked is None else chunked


def parse_json_body(raw: bytes) -> Any:
    """Any JSON request body; empty, invalid or too deeply nested is a 400."""
    if not raw:
        raise _bad("request body is empty: a JSON object is expected")
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
        raise _bad("request body is not valid JSON (or is nested too deeply)") from None


def parse_hook_body(raw: bytes) -> Any:
    """A hook call's body as a dict whose prefetch values are raw slices of the body. Odd shapes,
    bad bytes and deep nesting fall back to the plain parser, which reads up to orjson's limits and
    says precisely what is wrong."""
    if not raw:
        raise _bad("request body is empty: a CDS Hooks request is a JSON object")
    try:
        return _envelope_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return parse_json_body(raw)


def _optional_str(container: Mapping[str, Any], key: str, where: str) -> str | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{where}{key} must be a string")
    return value


def parse_hook_request(body: Any, service: ServiceDefinition) -> HookRequest:
    """Check the fields every hook call needs; order hooks check their own context on top."""
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    hook = body.get("hook")
    if not isinstance(hook, str) or not hook:
        raise _bad("hook is required")
    if hook != service.hook:
        raise _bad(f"hook must be '{service.hook}' for service {service.id}")
    hook_instance = body.get("hookInstance")
    if not isinstance(hook_instance, str) or not hook_instance.strip() or len(hook_instance) > 256:
        raise _bad("hookInstance is required (a string of at most 256 characters)")
    context = body.get("context")
    if not isinstance(context, dict):
        raise _bad("context is required and must be an object")
    patient_id = context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise _bad("context.patientId is required")
    if not _FHIR_ID.fullmatch(patient_id):  # fullmatch: `$` would let a trailing newline through
        raise _bad("context.patientId is not a valid FHIR id")
    user_id = _optional_str(context, "userId", "context.")
    fhir_server = _optional_str(body, "fhirServer", "")
    authorization = body.get("fhirAuthorization")
    access_token: str | None = None
    if authorization is not None:
        if not isinstance(authorization, dict):
            raise _bad("fhirAuthorization must be an object")
        access_token = _optional_str(authorization, "access_token", "fhirAuthorization.")
    prefetch = body.get("prefetch")
    if prefetch is None:
        prefetch = {}
    elif not isinstance(prefetch, dict):
        raise _bad("prefetch must be an object")
    orders = _orders_in_scope(context, hook) if hook in ("order-select", "order-sign") else ()
    return HookRequest(
        hook, hook_instance, patient_id, user_id, fhir_server, access_token, context, prefetch, orders
    )


def _orders_in_scope(context: Mapping[str, Any], hook: str) -> tuple[Mapping[str, Any], ...]:
    """draftOrders must be a Bundle (of any type) with entries; selections must point into it."""
    bundle = context.get("draftOrders")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise _bad("context.draftOrders is required and must be a FHIR Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise _bad("context.draftOrders has no entries")
    orders = [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if len(orders) != len(entries):
        raise _bad("context.draftOrders has an entry without a resource")
    if hook == "order-sign":
        return tuple(orders)
    selections = context.get("selections")
    if not isinstance(selections, list) or not selections or not all(isinstance(s, str) for s in selections):
        raise _bad("context.selections is required for order-select: a list of Type/id references")
    by_ref = {f"{o.get('resourceType')}/{o.get('id')}": o for o in orders}
    if any(s not in by_ref for s in selections):
        raise _bad("context.selections names an order that is not in context.draftOrders")
    return tuple(by_ref[s] for s in dict.fromkeys(selections))
