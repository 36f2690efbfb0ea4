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


def _order_check(hook: str, moment: str, when: str) -> ServiceDefinition:
    """order-select and order-sign check the same way; only the moment differs."""
    return ServiceDefinition(
        id=f"vertebral-augmentation-{hook}",
        hook=hook,
        title=f"Vertebral augmentation order check ({moment})",
        description=(
            f"{when}, checks it against the record: a recent osteoporotic or pathologic vertebral "
            "fracture, and every contraindication."
        ),
        handler=answer_order,
        prefetch=RECORD_PREFETCH,
    )


ORDER_SELECT = _order_check(
    "order-select", "on select", "When a vertebroplasty or kyphoplasty order is selected"
)
ORDER_SIGN = _order_check("order-sign", "on sign", "Before a vertebroplasty or kyphoplasty order is signed")

SERVICES: Mapping[str, ServiceDefinition] = {s.id: s for s in (REFERRAL, ORDER_SELECT, ORDER_SIGN)}
