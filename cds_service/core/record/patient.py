"""Patient (§1 onsetAge, §1a deceased): the birth date, and whether the patient has died."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from cds_service.core.record.dates import read_date
from cds_service.core.record.fhir_json import ResourceView


class PatientView(ResourceView, kw_only=True):
    birth_date: str | None = None
    deceased_boolean: Any = None
    deceased_date_time: str | None = None

    ESSENTIAL: ClassVar[frozenset[str]] = frozenset({"birthDate", "deceasedDateTime"})


@dataclass(frozen=True)
class PatientFacts:
    birth_date: date | None = None
    deceased: bool = False


def read_patient(view: PatientView, today: date) -> PatientFacts:
    """Deceased when deceasedBoolean is true or deceasedDateTime is on or before today. A date that
    cannot be read is left out (ValueError propagates to the caller, which counts it)."""
    birth = read_date(view.birth_date)
    died = read_date(view.deceased_date_time)
    deceased = view.deceased_boolean is True or (died is not None and died <= today)
    return PatientFacts(birth, deceased)
