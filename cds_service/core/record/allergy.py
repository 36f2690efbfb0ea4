"""AllergyIntolerance (§5 material-allergy): active (or unstated) and not refuted."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from cds_service.core.record.dates import read_date
from cds_service.core.record.facts import ClinicalFact
from cds_service.core.record.fhir_json import CodeableConcept, ResourceView, status_words
from cds_service.core.record.reading import Reading, UnreadableError


class Reaction(msgspec.Struct, frozen=True, gc=False):
    substance: CodeableConcept | None = None


class AllergyView(ResourceView, kw_only=True):
    clinical_status: CodeableConcept | None = None
    verification_status: CodeableConcept | None = None
    code: CodeableConcept | None = None
    reaction: tuple[Reaction, ...] = ()
    onset_date_time: str | None = None
    recorded_date: str | None = None

    IDENTIFYING: ClassVar[frozenset[str]] = frozenset({"code", "reaction"})
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset(
        {"clinicalStatus", "verificationStatus", "onsetDateTime", "recordedDate"}
    )
    STATUS_CONCEPTS: ClassVar[frozenset[str]] = frozenset({"clinicalStatus", "verificationStatus"})


def read_allergy(view: AllergyView, reading: Reading) -> ClinicalFact | None:
    params = reading.terminology.parameters
    clinical = status_words(view.clinical_status)
    if clinical and not clinical & params.counting_allergy_clinical_status:
        reading.aside(view, "clinical status", clinical)
        return None
    if status_words(view.verification_status) & params.excluded_allergy_verification_status:
        reading.aside(view, "verification status", view.verification_status)
        return None
    substances = [r.substance for r in view.reaction]
    concepts, label = reading.concepts("AllergyIntolerance", [view.code, *substances])
    if not reading.terminology.contraindication_rules(concepts):
        reading.aside(view, "no code the rules know")
        return None
    try:
        when = read_date(view.onset_date_time) or read_date(view.recorded_date)
    except ValueError as error:
        raise UnreadableError("date") from error
    if not reading.plausible(when, "AllergyIntolerance"):
        reading.aside(view, "future date", when)
        return None
    return ClinicalFact(view.ref, label or "AllergyIntolerance", concepts, when)
