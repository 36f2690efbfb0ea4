"""From raw FHIR JSON to the facts the rules use (clinical-rules.md §1, §1a).

One module per resource type; each decodes its resources once, into a typed view of the elements
the rules use, and reads them leniently. What matters but cannot be read is counted per type in
`PatientRecord.unreadable`, never silently dropped: the card says the checks may be incomplete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cds_service.core.explain import Trace
from cds_service.core.record.allergy import AllergyView, read_allergy
from cds_service.core.record.condition import ConditionFinding, ConditionView, read_condition
from cds_service.core.record.diagnostic_report import (
    DiagnosticReportView,
    RadiologyReport,
    read_diagnostic_report,
)
from cds_service.core.record.facts import ClinicalFact
from cds_service.core.record.fhir_json import ResourceView, ViewDecoder, belongs_to
from cds_service.core.record.imaging_study import ImagingStudyView, SpineStudy, read_imaging_study
from cds_service.core.record.medication import MedicationView, read_medication
from cds_service.core.record.patient import PatientFacts, PatientView, read_patient
from cds_service.core.record.procedure import (
    AugmentationRecord,
    ProcedureView,
    ServiceRequestView,
    read_augmentation,
)
from cds_service.core.record.reading import Reading, UnreadableError
from cds_service.core.terminology import Terminology

__all__ = [
    "AugmentationRecord",
    "ClinicalFact",
    "ConditionFinding",
    "PatientRecord",
    "RadiologyReport",
    "SpineStudy",
    "read_record",
]


@dataclass
class PatientRecord:
    """Everything the rules read about one patient, with what could not be read."""

    patient: PatientFacts = field(default_factory=PatientFacts)
    conditions: list[ConditionFinding] = field(default_factory=list)
    spine_studies: list[SpineStudy] = field(default_factory=list)
    facts: list[ClinicalFact] = field(default_factory=list)
    augmentations: list[AugmentationRecord] = field(default_factory=list)
    reports: list[RadiologyReport] = field(default_factory=list)
    unavailable: frozenset[str] = frozenset()
    unreadable: Counter[str] = field(default_factory=Counter)
    """Resources that matter (or might) whose needed elements could not be read, per type."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Resources set aside on purpose (other patient, future-dated, not a resource), for the log."""

    def has_concept(self, concept: str) -> bool:
        return any(concept in c.concepts for c in self.conditions)


Reader = Callable[[Any, Reading], Any]
_NOTHING_BAD: frozenset[str] = frozenset()

_DECODERS: dict[str, ViewDecoder] = {
    "Patient": ViewDecoder(PatientView),
    "Condition": ViewDecoder(ConditionView),
    "ImagingStudy": ViewDecoder(ImagingStudyView),
    "MedicationRequest": ViewDecoder(MedicationView),
    "MedicationStatement": ViewDecoder(MedicationView),
    "AllergyIntolerance": ViewDecoder(AllergyView),
    "Procedure": ViewDecoder(ProcedureView),
    "ServiceRequest": ViewDecoder(ServiceRequestView),
    "DiagnosticReport": ViewDecoder(DiagnosticReportView),
}


def view_type_of(resource_type: str) -> type[ResourceView] | None:
    """The typed view a resource type is read into (None: a type the rules do not read). The shell
    may decode a well-formed request body straight into these; the reader takes such views as is."""
    decoder = _DECODERS.get(resource_type)
    return decoder.view_type if decoder is not None else None


def read_elements(resource_type: str) -> frozenset[str]:
    """The top-level elements the reader decodes for a type: everything else is never looked at."""
    decoder = _DECODERS.get(resource_type)
    return decoder.element_names if decoder is not None else frozenset()


def _views(
    resources: Mapping[str, Sequence[object]],
    resource_type: str,
    patient_id: str | None,
    record: PatientRecord,
    trace: Trace | None = None,
) -> Iterable[tuple[ResourceView, frozenset[str]]]:
    """Decoded views of one type that belong to the patient; other patients' are counted. Items are
    raw slices, dicts, or views the shell already decoded strictly with the body (nothing bad)."""
    decoder = _DECODERS[resource_type]
    view_type = decoder.view_type
    own = None if resource_type == "Patient" else f"Patient/{patient_id}"  # a Patient is placed by id
    for index, item in enumerate(resources.get(resource_type, ())):
        if type(item) is view_type and item.resource_type == resource_type:
            view: ResourceView = item
            bad = _NOTHING_BAD
        else:
            decoded = None if type(item) is view_type else decoder.decode(item, resource_type)
            if decoded is None:
                record.skipped[f"{resource_type} not-a-{resource_type}"] += 1
                if trace is not None:
                    trace.set_aside(f"{resource_type} entry {index + 1}", f"not a {resource_type}")
                continue
            view, bad = decoded.view, decoded.bad
        subject = view.subject
        if (
            patient_id is not None
            and (subject is None or subject.reference != own)  # the usual case, answered at once
            and not belongs_to(view, patient_id)
        ):
            record.skipped[f"{resource_type} other-patient"] += 1
            if trace is not None:
                trace.set_aside(view.ref, "other patient")
            continue
        yield view, bad


def _read_all(
    resources: Mapping[str, Sequence[object]],
    resource_type: str,
    patient_id: str | None,
    record: PatientRecord,
    reading: Reading,
    reader: Reader,
) -> list[Any]:
    found: list[Any] = []
    trace = reading.trace
    for view, bad in _views(resources, resource_type, patient_id, record, trace):
        if bad & view.IDENTIFYING:
            record.unreadable[resource_type] += 1
            if trace is not None:
                trace.set_aside(view.ref, "unreadable", bad & view.IDENTIFYING)
            continue
        try:
            item = reader(view, reading)
        except UnreadableError as error:
            record.unreadable[resource_type] += 1
            if trace is not None:
                trace.note_codes(view.ref, getattr(view, "code", None))
                trace.set_aside(view.ref, "unreadable", error.args[0] if error.args else None)
            continue
        if item is None:
            continue
        if bad:  # it matters, and something it needs could not be read
            record.unreadable[resource_type] += 1
            if trace is not None:
                trace.note_codes(view.ref, getattr(view, "code", None))
                trace.set_aside(view.ref, "unreadable", bad)
            continue
        if trace is not None:
            trace.counted(view.ref)
            trace.note_codes(view.ref, getattr(view, "code", None))
        found.append(item)
    return found


def _patient_facts(
    resources: Mapping[str, Sequence[object]],
    patient_id: str | None,
    record: PatientRecord,
    today: date,
    trace: Trace | None,
) -> PatientFacts:
    facts = PatientFacts()
    for view, bad in _views(resources, "Patient", patient_id, record, trace):
        if bad:
            record.unreadable["Patient"] += 1
            if trace is not None:
                trace.set_aside(view.ref, "unreadable", bad)
            continue
        try:
            facts = read_patient(view, today)  # type: ignore[arg-type]
        except ValueError:
            record.unreadable["Patient"] += 1
            if trace is not None:
                trace.set_aside(view.ref, "unreadable", "birthDate / deceasedDateTime")
            continue
        if trace is not None:
            if facts.deceased:
                trace.matched(view.ref, "deceased: patient-view says nothing")
            else:
                trace.counted(view.ref, "read: not deceased")
    return facts


def read_record(
    resources: Mapping[str, Sequence[object]],
    terminology: Terminology,
    today: date,
    *,
    patient_id: str | None = None,
    unavailable: Iterable[str] = (),
    recent_days: int | None = None,
    trace: Trace | None = None,
) -> PatientRecord:
    """Raw resources by type (request-body slices or dicts) -> the record the rules read.

    `patient_id` set: resources that plainly name another patient are ignored and counted.
    `recent_days` set: report text older than the window (and its imaging lookback) is not read,
    since no rule of §7 uses it.
    `trace` (--explain, demo only): told why each resource counts or is set aside."""
    record = PatientRecord(unavailable=frozenset(unavailable))
    record.patient = _patient_facts(resources, patient_id, record, today, trace)
    reading = Reading(terminology, today, lambda: record.patient.birth_date, recent_days, trace)

    def read(resource_type: str, reader: Reader) -> list[Any]:
        return _read_all(resources, resource_type, patient_id, record, reading, reader)

    record.conditions = read("Condition", read_condition)
    record.spine_studies = read("ImagingStudy", read_imaging_study)
    record.facts = [
        *read("MedicationRequest", read_medication),
        *read("MedicationStatement", read_medication),
        *read("AllergyIntolerance", read_allergy),
    ]
    record.augmentations = [
        *read("Procedure", read_augmentation),
        *read("ServiceRequest", read_augmentation),
    ]
    record.reports = read("DiagnosticReport", read_diagnostic_report)
    record.skipped.update(reading.skipped)
    return record
