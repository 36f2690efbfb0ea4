"""The services this CDS offers, as discovery shows them (api-contract.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PrefetchQuery:
    """One prefetch key: its template, the resource type it yields, and whether the rules need it."""

    template: str
    resource_type: str
    required: bool = False


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
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
}

REFERRAL = ServiceDefinition(
    id="vertebral-augmentation-referral",
    hook="patient-view",
    title="Vertebral augmentation referral",
    description=(
        "Detects a recent osteoporotic or pathologic vertebral compression fracture and suggests referral "
        "for kyphoplasty / vertebroplasty evaluation, with notes on every contraindication found."
    ),
    prefetch=RECORD_PREFETCH,
)

SERVICES: Mapping[str, ServiceDefinition] = {service.id: service for service in (REFERRAL,)}
