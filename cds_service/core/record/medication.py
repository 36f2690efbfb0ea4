"""MedicationRequest and MedicationStatement (§5 anticoagulation): medicines in use."""

from __future__ import annotations

from typing import Any, ClassVar

from cds_service.core.record.dates import read_date
from cds_service.core.record.facts import ClinicalFact
from cds_service.core.record.fhir_json import CodeableConcept, Period, Reference, ResourceView, repair_concept
from cds_service.core.record.reading import Reading, UnreadableError


class MedicationView(ResourceView, kw_only=True):
    status: str | None = None
    medication_codeable_concept: CodeableConcept | None = None
    medication_reference: Reference | None = None
    contained: tuple[Any, ...] = ()
    authored_on: str | None = None
    effective_date_time: str | None = None
    effective_period: Period | None = None
    date_asserted: str | None = None

    IDENTIFYING: ClassVar[frozenset[str]] = frozenset({"medicationCodeableConcept", "medicationReference"})
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset(
        {"status", "authoredOn", "effectiveDateTime", "effectivePeriod", "dateAsserted"}
    )


def _medication_concepts(view: MedicationView) -> list[CodeableConcept | None]:
    """The medication's CodeableConcept, a contained Medication's code, and a reference's display."""
    concepts: list[CodeableConcept | None] = [view.medication_codeable_concept]
    reference = view.medication_reference
    if reference is not None:
        if reference.display:
            concepts.append(CodeableConcept(text=reference.display))
        target = reference.reference
        if target and target.startswith("#"):
            for item in view.contained:
                if (
                    isinstance(item, dict)
                    and item.get("resourceType") == "Medication"
                    and item.get("id") == target[1:]
                ):
                    code = repair_concept(item.get("code"))
                    if isinstance(code, CodeableConcept):
                        concepts.append(code)
    return concepts


def read_medication(view: MedicationView, reading: Reading) -> ClinicalFact | None:
    params = reading.terminology.parameters
    if (view.status or "").strip().lower() not in params.counting_medication_status:
        reading.aside(view, "status", view.status or "none")
        return None
    concepts, label = reading.concepts(view.resource_type, _medication_concepts(view))
    if not reading.terminology.contraindication_rules(concepts):
        reading.aside(view, "no code the rules know", view.medication_codeable_concept)
        return None
    period = view.effective_period
    try:
        when = next(
            (
                read_date(value)
                for value in (
                    view.authored_on,
                    view.effective_date_time,
                    period.start if period else None,
                    view.date_asserted,
                )
                if value is not None
            ),
            None,
        )
    except ValueError as error:
        raise UnreadableError("date") from error
    if not reading.plausible(when, view.resource_type):
        reading.aside(view, "future date", when)
        return None
    return ClinicalFact(view.ref, label or view.resource_type, concepts, when)
