"""Procedure and ServiceRequest (§3): vertebral augmentation done, or a referral for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Literal

from cds_service.core.record.dates import read_date
from cds_service.core.record.fhir_json import CodeableConcept, Period, ResourceView
from cds_service.core.record.reading import Reading, UnreadableError


class ProcedureView(ResourceView, kw_only=True):
    status: str | None = None
    code: CodeableConcept | None = None
    performed_date_time: str | None = None
    performed_period: Period | None = None

    IDENTIFYING: ClassVar[frozenset[str]] = frozenset({"code"})
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset({"status", "performedDateTime", "performedPeriod"})


class ServiceRequestView(ResourceView, kw_only=True):
    status: str | None = None
    code: CodeableConcept | None = None
    authored_on: str | None = None

    IDENTIFYING: ClassVar[frozenset[str]] = frozenset({"code"})
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset({"status", "authoredOn"})


@dataclass(frozen=True)
class AugmentationRecord:
    """A vertebroplasty / kyphoplasty done (Procedure) or a referral for one (ServiceRequest)."""

    ref: str
    kind: Literal["procedure", "referral"]
    label: str
    date: date | None


def read_augmentation(
    view: ProcedureView | ServiceRequestView, reading: Reading
) -> AugmentationRecord | None:
    params = reading.terminology.parameters
    is_procedure = isinstance(view, ProcedureView)
    counting = params.counting_procedure_status if is_procedure else params.counting_service_request_status
    if (view.status or "").strip().lower() not in counting:
        reading.aside(view, "status", view.status or "none")
        return None
    concepts, label = reading.concepts(view.resource_type, [view.code])
    if not reading.terminology.is_augmentation(concepts):
        reading.aside(view, "no code the rules know")
        return None
    try:
        if isinstance(view, ProcedureView):
            period = view.performed_period
            when = read_date(view.performed_date_time) or read_date(period.start if period else None)
        else:
            when = read_date(view.authored_on)
    except ValueError as error:
        raise UnreadableError("date") from error
    if not reading.plausible(when, view.resource_type):
        reading.aside(view, "future date", when)
        return None
    kind: Literal["procedure", "referral"] = "procedure" if is_procedure else "referral"
    return AugmentationRecord(view.ref, kind, label or kind, when)
