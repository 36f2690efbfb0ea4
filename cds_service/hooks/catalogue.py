"""The service catalogue: the services this CDS offers, as discovery shows them (api-contract.md),
each with the handler that answers it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_service.hooks.handlers import HookHandler, answer_order, answer_patient_view
from cds_service.hooks.prefetch import PrefetchQuery


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    handler: HookHandler
    """Answers a call of this service (hooks/handlers.py): the route dispatches here."""
    prefetch: Mapping[str, PrefetchQuery] = field(default_factory=dict)

    def discovery(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "prefetch": {key: query.template for key, query in self.prefetch.items()},
        }


RECORD_PREFETCH: Mapping[str, PrefetchQuery] = {
    "patient": PrefetchQuery("Patient/{{context.patientId}}", "Patient"),
    "conditions": PrefetchQuery("Condition?patient={{context.patientId}}", "Condition", required=True),
    "imaging": PrefetchQuery("ImagingStudy?patient={{context.patientId}}", "ImagingStudy"),
    "procedures": PrefetchQuery("Procedure?patient={{context.patientId}}", "Procedure"),
    "servicerequests": PrefetchQuery("ServiceRequest?patient={{context.patientId}}", "ServiceRequest"),
    "medicationrequests": PrefetchQuery(
        "MedicationRequest?patient={{context.patientId}}", "MedicationRequest"
    ),
    "medicationstatements": PrefetchQuery(
        "MedicationStatement?patient={{context.patientId}}", "MedicationStatement"
    ),
    "allergies": PrefetchQuery("AllergyIntolerance?patient={{context.patientId}}", "AllergyIntolerance"),
    # Radiology reports (clinical-rules.md §7): optional like the others.
    "reports": PrefetchQuery("DiagnosticReport?patient={{context.patientId}}", "DiagnosticReport"),
}

REFERRAL = ServiceDefinition(
    id="vertebral-augmentation-referral",
    hook="patient-view",
    title="Vertebral augmentation referral",
    description=(
        "Detects a recent osteoporotic or pathologic vertebral compression fracture and suggests referral "
        "for kyphoplasty / vertebroplasty evaluation, with notes on every contraindication found."
    ),
    handler=answer_patient_view,
    prefetch=RECORD_PREFETCH,
)

ORDER_SELECT = ServiceDefinition(
    id="vertebral-augmentation-order-select",
    hook="order-select",
    title="Vertebral augmentation order check (on select)",
    description=(
        "When a vertebroplasty or kyphoplasty order is selected, checks it against the record: a recent "
        "osteoporotic or pathologic vertebral fracture, and every contraindication."
    ),
    handler=answer_order,
    prefetch=RECORD_PREFETCH,
)

ORDER_SIGN = ServiceDefinition(
    id="vertebral-augmentation-order-sign",
    hook="order-sign",
    title="Vertebral augmentation order check (on sign)",
    description=(
        "Before a vertebroplasty or kyphoplasty order is signed, checks it against the record: a recent "
        "osteoporotic or pathologic vertebral fracture, and every contraindication."
    ),
    handler=answer_order,
    prefetch=RECORD_PREFETCH,
)

SERVICES: Mapping[str, ServiceDefinition] = {s.id: s for s in (REFERRAL, ORDER_SELECT, ORDER_SIGN)}
