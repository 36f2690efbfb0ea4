"""POST /cds-services/{id}: a hook call, from request body to cards."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import Any

from flask import Blueprint, Response, g, request

from cds_service.auth.token import Caller
from cds_service.core.card_builder import CardJson, order_card, referral_card
from cds_service.core.decision import decide_order, decide_referral
from cds_service.core.explain import Trace
from cds_service.core.orders import augmentation_orders
from cds_service.core.record import read_record
from cds_service.hook_request import (
    HookRequest,
    check_content_type,
    parse_hook_body,
    parse_hook_request,
    request_body,
)
from cds_service.metrics import record_card
from cds_service.outcome import CdsError, json_response
from cds_service.prefetch import gather_record
from cds_service.runtime import Runtime, runtime
from cds_service.services import ServiceDefinition

bp = Blueprint("hooks", __name__)
log = logging.getLogger("cds_service.hooks")
EXPLAIN_EXTENSION = "vertebral-augmentation-cds/explain"
"""Demo mode only, on `?explain=true`: why the card did (not) appear. Never in production answers."""


def _explain_trace(rt: Runtime) -> Trace | None:
    """A trace for this call when asked for and the service runs in demo mode; otherwise None (the
    flag is ignored: a production answer never carries record details beyond the card)."""
    if not rt.settings.demo or request.args.get("explain", "").lower() not in ("1", "true", "yes"):
        return None
    return Trace()


def _answer(cards: list[CardJson], trace: Trace | None) -> Response:
    if trace is None:
        return json_response({"cards": cards})
    return json_response({"cards": cards, "extension": {EXPLAIN_EXTENSION: trace.as_json()}})


def _new_uuid() -> str:
    return str(uuid.uuid4())


def rationale_url(rt: Runtime) -> str:
    # scheme + Host header: what host_url gives, without werkzeug's IRI round trip on every call.
    base = rt.settings.public_base_url or f"{request.scheme}://{request.host}{request.script_root}"
    return base.rstrip("/") + "/rationale"


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    started = time.perf_counter()
    rt = runtime()
    deadline = time.monotonic() + rt.settings.fhir_budget_seconds  # the whole call's fetch budget
    service = rt.services.get(service_id)
    if service is None:
        raise CdsError(404, "not-found", "unknown CDS service")
    check_content_type(request.mimetype)
    hook_request = parse_hook_request(parse_hook_body(request_body()), service)
    caller = g.get("caller")
    if isinstance(caller, Caller) and caller.fhir_servers is not None:
        hook_request = dataclasses.replace(hook_request, allowed_fhir_origins=caller.fhir_servers)
    orders = (
        augmentation_orders(hook_request.orders, rt.terminology) if service.hook != "patient-view" else []
    )
    trace = _explain_trace(rt)
    if service.hook != "patient-view" and not orders:
        _log_answer(service, hook_request, started, [], recommendation=None, orders=0)
        if trace is not None:
            trace.decision.append("no card: no vertebral augmentation order in the call (record not read)")
        return _answer([], trace)  # not an augmentation order: the record is not needed
    data = gather_record(hook_request, service, rt.fetcher, deadline)
    today = rt.clock()
    record = read_record(
        data.resources,
        rt.terminology,
        today,
        patient_id=hook_request.patient_id,
        unavailable=data.unavailable,
        recent_days=rt.settings.recent_days,
        trace=trace,
    )
    card: CardJson | None
    recommendation: str | None
    if service.hook == "patient-view":
        decision = decide_referral(record, rt.terminology, today, rt.settings.recent_days, trace)
        recommendation = decision.recommendation
        card = referral_card(
            decision,
            rt.content,
            patient_id=hook_request.patient_id,
            user_id=hook_request.user_id,
            rationale_url=rationale_url(rt),
            new_uuid=_new_uuid,
            level_coding=rt.terminology.level_coding,
        )
    else:
        order_decision = decide_order(record, orders, rt.terminology, today, rt.settings.recent_days, trace)
        recommendation = order_decision.recommendation
        card = order_card(order_decision, rt.content, rationale_url=rationale_url(rt), new_uuid=_new_uuid)
    cards = [card] if card else []
    if card is not None and recommendation is not None:
        record_card(service.id, recommendation)
        if rt.recorder is not None:
            rt.recorder.record_card(card, service.id)
    _log_answer(
        service,
        hook_request,
        started,
        cards,
        recommendation=recommendation if card is not None else None,
        resources={k: len(v) for k, v in data.resources.items()},
        unreadable=dict(record.unreadable),
        skipped=dict(data.skipped + record.skipped),
        unavailable=sorted(data.unavailable),
        fetchFailures=data.failures,
    )
    return _answer(cards, trace)


def _log_answer(
    service: ServiceDefinition,
    hook_request: HookRequest,
    started: float,
    cards: list[CardJson],
    **counts: Any,
) -> None:
    """One JSON line per answered call: ids of the call, counts and timing, never patient data."""
    log.info(
        "hook answered",
        extra={
            "service": service.id,
            "hook": service.hook,
            "hookInstance": hook_request.hook_instance,
            "cards": len(cards),
            **counts,
            "ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
