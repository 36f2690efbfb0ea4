"""One handler per hook: a validated call in, the card (if any) and what to log out. The route
dispatches to `service.handler`; a new hook is a new handler here and a ServiceDefinition."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from cds_service.core.card_builder import CardJson, order_card, referral_card
from cds_service.core.decision import decide_order, decide_referral
from cds_service.core.explain import Trace
from cds_service.core.orders import augmentation_orders
from cds_service.core.record import PatientRecord, read_record
from cds_service.hooks.prefetch import RecordData, gather_record
from cds_service.hooks.request import HookRequest

if TYPE_CHECKING:
    from cds_service.hooks.catalogue import ServiceDefinition
    from cds_service.runtime import Runtime


@dataclass(frozen=True)
class HookCall:
    """Everything a handler may use: the parsed request, what the app shares, and this call's
    fetch deadline, trace (demo `?explain=true`) and rationale link."""

    service: ServiceDefinition
    request: HookRequest
    runtime: Runtime
    deadline: float
    today: date
    """Read once per call: the record and the decision see the same day."""
    rationale_url: str
    trace: Trace | None = None


@dataclass(frozen=True)
class HookAnswer:
    card: CardJson | None
    recommendation: str | None
    """What was decided, when a card says it (metrics, the card log)."""
    counts: dict[str, Any] = field(default_factory=dict)
    """Counts for the call's log line: never patient data."""


HookHandler = Callable[[HookCall], HookAnswer]


def _new_uuid() -> str:
    """A random (version 4) uuid, written out directly from the OS's random bytes: building a
    uuid.UUID to print it costs three times what the bytes do, and a card takes up to three."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _read(call: HookCall) -> tuple[RecordData, PatientRecord]:
    rt = call.runtime
    data = gather_record(call.request, call.service.prefetch, rt.fetcher, call.deadline)
    record = read_record(
        data.resources,
        rt.terminology,
        call.today,
        patient_id=call.request.patient_id,
        unavailable=data.unavailable,
        recent_days=rt.settings.recent_days,
        trace=call.trace,
    )
    return data, record


def _answer(
    card: CardJson | None, recommendation: str | None, data: RecordData, record: PatientRecord
) -> HookAnswer:
    skipped = data.skipped.copy()  # summed in place: Counter's `+` builds and filters a third one
    skipped.update(record.skipped)
    return HookAnswer(
        card,
        recommendation if card is not None else None,
        {
            "resources": {k: len(v) for k, v in data.resources.items()},
            "unreadable": dict(record.unreadable),
            "skipped": dict(skipped),
            "unavailable": sorted(data.unavailable),
            "fetchFailures": data.failures,
        },
    )


def answer_patient_view(call: HookCall) -> HookAnswer:
    """patient-view: a referral (or evaluate / contraindicated) card when the record has a fracture."""
    rt = call.runtime
    data, record = _read(call)
    decision = decide_referral(record, rt.terminology, call.today, rt.settings.recent_days, call.trace)
    card = referral_card(
        decision,
        rt.content,
        patient_id=call.request.patient_id,
        user_id=call.request.user_id,
        rationale_url=call.rationale_url,
        new_uuid=_new_uuid,
        level_coding=rt.terminology.level_coding,
    )
    return _answer(card, decision.recommendation, data, record)


def answer_order(call: HookCall) -> HookAnswer:
    """order-select / order-sign: the augmentation orders in scope checked against the record; any
    other order is not ours, and the record is then not even read."""
    rt = call.runtime
    orders = augmentation_orders(call.request.orders, rt.terminology)
    if not orders:
        if call.trace is not None:
            call.trace.decision.append(
                "no card: no vertebral augmentation order in the call (record not read)"
            )
        return HookAnswer(None, None, {"orders": 0})
    data, record = _read(call)
    decision = decide_order(record, orders, rt.terminology, call.today, rt.settings.recent_days, call.trace)
    card = order_card(decision, rt.content, rationale_url=call.rationale_url, new_uuid=_new_uuid)
    return _answer(card, decision.recommendation, data, record)
