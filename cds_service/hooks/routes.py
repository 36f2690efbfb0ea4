"""GET /cds-services (discovery) and POST /cds-services/{id} (a hook call): parse, dispatch to the
service's handler, answer, record and log."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from flask import Blueprint, Response, g, request

from cds_service.auth.token import Caller
from cds_service.core.card_builder import CardJson
from cds_service.core.explain import Trace
from cds_service.hooks.catalogue import ServiceDefinition
from cds_service.hooks.handlers import HookCall
from cds_service.hooks.prefetch import read_hook_body
from cds_service.hooks.request import HookRequest, parse_hook_request
from cds_service.runtime import Runtime, runtime
from cds_service.web.body import request_body
from cds_service.web.metrics import record_card
from cds_service.web.responses import CdsError, json_response
from cds_service.web.urls import base_url

bp = Blueprint("hooks", __name__)
log = logging.getLogger("cds_service.hooks")
EXPLAIN_EXTENSION = "vertebral-augmentation-cds/explain"
"""Demo mode only, on `?explain=true`: why the card did (not) appear. Never in production answers."""


@bp.get("/cds-services")
def discovery() -> Response:
    return json_response({"services": [s.discovery() for s in runtime().services.values()]})


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


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    started = time.perf_counter()
    rt = runtime()
    deadline = time.monotonic() + rt.settings.fhir_budget_seconds  # the whole call's fetch budget
    service = rt.services.get(service_id)
    if service is None:
        raise CdsError(404, "not-found", "unknown CDS service")
    hook_request = parse_hook_request(read_hook_body(request_body(), service.prefetch), service)
    caller = g.get("caller")
    if isinstance(caller, Caller) and caller.fhir_servers is not None:
        hook_request = dataclasses.replace(hook_request, allowed_fhir_origins=caller.fhir_servers)
    trace = _explain_trace(rt)
    call = HookCall(
        service,
        hook_request,
        rt,
        deadline,
        today=rt.clock(),
        rationale_url=base_url(rt.settings) + "/rationale",
        trace=trace,
    )
    answer = service.handler(call)
    cards = [answer.card] if answer.card is not None else []
    if answer.card is not None and answer.recommendation is not None:
        record_card(service.id, answer.recommendation)
        if rt.recorder is not None:
            rt.recorder.record_card(answer.card, service.id)
    counts = {"recommendation": answer.recommendation, **answer.counts}
    _log_answer(service, hook_request, started, cards, **counts)
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
