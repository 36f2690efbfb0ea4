"""Condition (§1, §1a): counts when current, not abated and confirmed (or unstated); dated by onset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from cds_service.core.record.dates import date_at_age, read_date
from cds_service.core.record.fhir_json import (
    CodeableConcept,
    Coding,
    Period,
    Quantity,
    ResourceView,
    concept_label,
    status_counts,
)
from cds_service.core.record.reading import Reading, UnreadableError
from cds_service.core.terminology import CodeMeaning, Terminology


class ConditionView(ResourceView, kw_only=True):
    code: CodeableConcept | None = None
    clinical_status: CodeableConcept | None = None
    verification_status: CodeableConcept | None = None
    body_site: tuple[CodeableConcept, ...] = ()
    onset_date_time: str | None = None
    onset_period: Period | None = None
    onset_age: Quantity | None = None
    recorded_date: str | None = None
    abatement_date_time: str | None = None
    abatement_period: Period | None = None
    abatement_age: Quantity | None = None
    abatement_string: Any = None
    abatement_range: Any = None
    abatement_boolean: Any = None

    IDENTIFYING: ClassVar[frozenset[str]] = frozenset({"code"})
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset(
        {
            "clinicalStatus",
            "verificationStatus",
            "onsetDateTime",
            "onsetPeriod",
            "onsetAge",
            "recordedDate",
            "abatementDateTime",
            "abatementPeriod",
            "abatementAge",
        }
    )
    STATUS_CONCEPTS: ClassVar[frozenset[str]] = frozenset({"clinicalStatus", "verificationStatus"})


@dataclass(frozen=True)
class ConditionFinding:
    """A Condition that counts (§1) and carries at least one code the rules know."""

    ref: str
    label: str
    meaning: CodeMeaning
    codings: tuple[Coding, ...]
    date: date | None
    body_site: CodeMeaning | None

    @property
    def concepts(self) -> frozenset[str]:
        return self.meaning.concepts


def _is_abated(view: ConditionView, today: date, birth: date | None) -> bool:
    if view.abatement_boolean is True or (isinstance(view.abatement_string, str) and view.abatement_string):
        return True
    if view.abatement_date_time is not None:
        ended = read_date(view.abatement_date_time)
        return ended is None or ended <= today
    if view.abatement_period is not None and view.abatement_period.end is not None:
        ended = read_date(view.abatement_period.end)
        return ended is None or ended <= today
    if view.abatement_age is not None:
        # An age with no birth date to place it cannot be shown to lie ahead: the record says it ended.
        age = view.abatement_age
        reached = date_at_age(birth, age.value, age.code or age.unit) if birth else None
        return reached is None or reached <= today
    return view.abatement_range is not None


def condition_date(view: ConditionView, birth: date | None) -> date | None:
    """§1: onsetDateTime, else onsetPeriod.start, else onsetAge + birthDate, else recordedDate."""
    if view.onset_date_time is not None:
        return read_date(view.onset_date_time)
    if view.onset_period is not None and view.onset_period.start is not None:
        return read_date(view.onset_period.start)
    if view.onset_age is not None and birth is not None:
        age = view.onset_age
        found = date_at_age(birth, age.value, age.code or age.unit)
        if found is not None:
            return found
    return read_date(view.recorded_date)


def read_condition(view: ConditionView, reading: Reading) -> ConditionFinding | None:
    """The Condition as the rules see it, None when it does not count; UnreadableError when it matters
    but a needed element cannot be read."""
    terminology: Terminology = reading.terminology
    meaning = terminology.meaning_of_concept(view.code)
    if meaning is None:
        reading.aside(view, "no code the rules know")
        return None
    params = terminology.parameters
    if not status_counts(view.clinical_status, params.counting_clinical_status, params.clinical_status_words):
        reading.aside(view, "clinical status", view.clinical_status)
        return None
    if not status_counts(
        view.verification_status, params.counting_verification_status, params.verification_status_words
    ):
        reading.aside(view, "verification status", view.verification_status)
        return None
    needs_birth = view.onset_age is not None or view.abatement_age is not None
    birth = reading.birth_date() if needs_birth else None
    try:
        if _is_abated(view, reading.today, birth):
            reading.aside(view, "abated")
            return None
    except ValueError as error:
        raise UnreadableError("abatement date") from error
    try:
        when = condition_date(view, birth)
    except ValueError as error:
        raise UnreadableError("onset / recorded date") from error
    if not reading.plausible(when, "Condition"):
        reading.aside(view, "future date", when)
        return None
    assert view.code is not None
    return ConditionFinding(
        ref=view.ref,
        label=concept_label(view.code, "Condition"),
        meaning=meaning,
        codings=tuple(view.code.coding),
        date=when,
        body_site=reading.body_site(view.body_site),
    )
