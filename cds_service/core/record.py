"""From raw FHIR JSON to the facts the rules use.

A patient may have thousands of resources and almost none matter, so each raw resource is first
scanned cheaply (codings looked up in the compiled value sets, a few text fields matched) and only
the ones that can matter are validated with the R4B models. A resource that fails validation, or
that carries a date far in the future, is skipped and counted; it never fails the call.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from cds_service.core.fhirdates import date_at_age, to_date
from cds_service.core.resource_view import Resource, as_resource
from cds_service.core.terminology import LEVELS, CodeMeaning, Terminology

RawResource = Mapping[str, Any]

_LEVEL_TEXT = re.compile(r"\b(T|Th|L)\s?-?(\d{1,2})\b", re.IGNORECASE)
_REGION_WORDS = (
    ("thoracolumbar", "thoracolumbar"),
    ("thoraco-lumbar", "thoracolumbar"),
    ("lumbosacral", "lumbosacral"),
    ("lumbo-sacral", "lumbosacral"),
    ("lumbar", "lumbar"),
    ("thoracic", "thoracic"),
)


@dataclass(frozen=True)
class ConditionFinding:
    """A Condition that counts (§1) and carries at least one code the rules know."""

    ref: str
    label: str
    meaning: CodeMeaning
    codings: tuple[Mapping[str, Any], ...]
    date: date | None
    body_site: CodeMeaning | None

    @property
    def concepts(self) -> frozenset[str]:
        return self.meaning.concepts


@dataclass(frozen=True)
class SpineStudy:
    """A spine ImagingStudy that is not cancelled or entered in error (§4)."""

    ref: str
    label: str
    started: date | None
    modalities: frozenset[str]
    level: str | None
    region: str | None
    reason: CodeMeaning | None
    reason_codings: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class ClinicalFact:
    """A medication in use or an allergy that a contraindication rule names."""

    ref: str
    label: str
    concepts: frozenset[str]
    date: date | None


@dataclass(frozen=True)
class AugmentationRecord:
    """A vertebroplasty / kyphoplasty done (Procedure) or a referral for one (ServiceRequest)."""

    ref: str
    kind: Literal["procedure", "referral"]
    label: str
    date: date | None


@dataclass
class PatientRecord:
    """Everything the rules read about one patient, with what could not be read."""

    birth_date: date | None = None
    conditions: list[ConditionFinding] = field(default_factory=list)
    spine_studies: list[SpineStudy] = field(default_factory=list)
    facts: list[ClinicalFact] = field(default_factory=list)
    augmentations: list[AugmentationRecord] = field(default_factory=list)
    unavailable: frozenset[str] = frozenset()
    skipped: Counter[str] = field(default_factory=Counter)

    def has_concept(self, concept: str) -> bool:
        return any(concept in c.concepts for c in self.conditions)


def _codes_of(concept: Any) -> set[str]:
    return {c.code for c in (concept.coding or []) if c.code} if concept is not None else set()


def _status_counts(concept: Any, counting: frozenset[str]) -> bool:
    codes = _codes_of(concept)
    return not codes or bool(codes & counting)


def listed(value: object) -> list[Any]:
    """A JSON array as a list; anything else (a number, an object, a string) as no items."""
    return value if isinstance(value, list) else []


def _status(raw: RawResource) -> str | None:
    """`status` when it is a string; hostile input may put any JSON there."""
    value = raw.get("status")
    return value if isinstance(value, str) else None


def _label(code: Mapping[str, Any] | None, fallback: str) -> str:
    if not isinstance(code, Mapping):
        return fallback
    text = code.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    for coding in listed(code.get("coding")):
        if isinstance(coding, Mapping):
            display, value = coding.get("display"), coding.get("code")
            if isinstance(display, str) and display.strip():
                return display.strip()
            if isinstance(value, str) and value.strip():
                return value.strip()
    return fallback


def level_from_text(text: str) -> str | None:
    for match in _LEVEL_TEXT.finditer(text):
        prefix = "T" if match.group(1).upper().startswith("T") else "L"
        level = f"{prefix}{int(match.group(2))}"
        if level in LEVELS:
            return level
    return None


def _text_meaning(
    texts: Iterable[str], terminology: Terminology, with_level: bool = True
) -> CodeMeaning | None:
    """Spine-ness, level and region read from free text (bodySite text, displays).

    Study descriptions name MRI sequences ("T1", "T2"), so callers reading them pass with_level=False.
    """
    joined = " ".join(t for t in texts if t)
    level = level_from_text(joined) if joined and with_level else None
    if not joined or not terminology.text_matches("spine-body-site", joined):
        return CodeMeaning(frozenset({"spine-body-site"}), level) if level else None
    lowered = joined.lower()
    region = next((name for word, name in _REGION_WORDS if word in lowered), None)
    return CodeMeaning(frozenset({"spine-body-site"}), level, region)


def _concept_texts(concepts: Iterable[Mapping[str, Any]]) -> list[str]:
    texts: list[str] = []
    for concept in concepts:
        if isinstance(concept.get("text"), str):
            texts.append(concept["text"])
        for coding in listed(concept.get("coding")):
            if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
                texts.append(coding["display"])
    return texts


def _body_site(raw_sites: object, terminology: Terminology) -> CodeMeaning | None:
    if not isinstance(raw_sites, list):
        return None
    sites = [s for s in raw_sites if isinstance(s, Mapping)]
    merged: CodeMeaning | None = None
    for site in sites:
        found = terminology.meaning_of_codings(site.get("coding"))
        merged = found.merge(merged) if found else merged
    from_text = _text_meaning(_concept_texts(sites), terminology)
    return merged.merge(from_text) if merged else from_text


def _is_abated(model: Condition, today: date, birth: date | None) -> bool:
    if model.abatementString is not None:
        return True
    if model.abatementDateTime is not None:
        ended = to_date(model.abatementDateTime)
        return ended is None or ended <= today
    if model.abatementPeriod is not None and model.abatementPeriod.end is not None:
        ended = to_date(model.abatementPeriod.end)
        return ended is None or ended <= today
    if model.abatementAge is not None:
        # An age with no birth date to place it cannot be shown to lie ahead: the record says it ended.
        reached = (
            date_at_age(birth, model.abatementAge.value, model.abatementAge.code or model.abatementAge.unit)
            if birth
            else None
        )
        return reached is None or reached <= today
    return model.abatementRange is not None


def condition_date(model: Condition, birth: date | None) -> date | None:
    """§1: onsetDateTime, else onsetPeriod.start, else onsetAge + birthDate, else recordedDate."""
    if model.onsetDateTime is not None:
        return to_date(model.onsetDateTime)
    if model.onsetPeriod is not None and model.onsetPeriod.start is not None:
        return to_date(model.onsetPeriod.start)
    if model.onsetAge is not None and birth is not None:
        found = date_at_age(birth, model.onsetAge.value, model.onsetAge.code or model.onsetAge.unit)
        if found is not None:
            return found
    return to_date(model.recordedDate) if model.recordedDate is not None else None


def _ref(resource_type: str, raw: RawResource) -> str:
    rid = raw.get("id")
    return f"{resource_type}/{rid}" if isinstance(rid, str) and rid else f"{resource_type}/(no id)"


class RecordReader:
    """Turns raw resources into a PatientRecord for one evaluation day."""

    def __init__(self, terminology: Terminology, today: date) -> None:
        self.terminology = terminology
        self.today = today
        self.params = terminology.parameters
        self.latest_allowed = today + timedelta(days=self.params.future_tolerance_days)
        self._patients: list[Resource] = []
        self._birth_read = False

    def read(
        self, resources: Mapping[str, Sequence[object]], unavailable: Iterable[str] = ()
    ) -> PatientRecord:
        record = PatientRecord(unavailable=frozenset(unavailable))
        self._patients = list(_views(resources, "Patient"))
        self._birth_read = False
        for view in _views(resources, "Condition"):
            self._read_condition(view, record)
        for view in _views(resources, "ImagingStudy"):
            self._read_study(view, record)
        for resource_type in ("MedicationRequest", "MedicationStatement", "AllergyIntolerance"):
            for view in _views(resources, resource_type):
                self._read_fact(resource_type, view, record)
        for resource_type in ("Procedure", "ServiceRequest"):
            for view in _views(resources, resource_type):
                self._read_augmentation(resource_type, view, record)
        return record

    def _concepts(self, resource_type: str, concepts: Iterable[object]) -> tuple[frozenset[str], str | None]:
        """Value-set concepts named by codings or text of some CodeableConcepts, and a label."""
        found: set[str] = set()
        label: str | None = None
        for concept in concepts:
            if not isinstance(concept, Mapping):
                continue
            meaning = self.terminology.meaning_of_codings(concept.get("coding"))
            named = self.terminology.text_concepts(resource_type, _concept_texts([concept]))
            if meaning is not None or named:
                found.update(named)
                found.update(meaning.concepts if meaning else ())
                label = label or _label(concept, resource_type)
        return frozenset(found), label

    def _dated(self, when: date | None, resource_type: str, record: PatientRecord) -> bool:
        """False (and counted) for a date more than the tolerated day ahead: a data error."""
        if when is not None and when > self.latest_allowed:
            record.skipped[f"{resource_type} future-dated"] += 1
            return False
        return True

    def _read_fact(self, resource_type: str, view: Resource, record: PatientRecord) -> None:
        raw = view.light
        params = self.params
        if resource_type == "AllergyIntolerance":
            if not _raw_status_counts(raw.get("clinicalStatus"), params.counting_allergy_clinical_status):
                return
            if _raw_codes(raw.get("verificationStatus")) & params.excluded_allergy_verification_status:
                return
            reactions = raw.get("reaction")
            substances = (
                [r.get("substance") for r in reactions if isinstance(r, Mapping)]
                if isinstance(reactions, list)
                else []
            )
            concepts, label = self._concepts(resource_type, [raw.get("code"), *substances])
        else:
            if _status(raw) not in params.counting_medication_status:
                return
            concepts, label = self._concepts(resource_type, _medication_concepts(raw))
        if not self.terminology.contraindication_rules(concepts):
            return
        model = self._valid(_MODELS[resource_type], view.full(), record)
        if model is None:
            return
        when = _fact_date(model)
        if self._dated(when, resource_type, record):
            record.facts.append(
                ClinicalFact(_ref(resource_type, raw), label or resource_type, concepts, when)
            )

    def _read_augmentation(self, resource_type: str, view: Resource, record: PatientRecord) -> None:
        raw = view.light
        counting = (
            self.params.counting_procedure_status
            if resource_type == "Procedure"
            else self.params.counting_service_request_status
        )
        if _status(raw) not in counting:
            return
        concepts, label = self._concepts(resource_type, [raw.get("code")])
        if not self.terminology.is_augmentation(concepts):
            return
        model = self._valid(_MODELS[resource_type], view.full(), record)
        if model is None:
            return
        if resource_type == "Procedure":
            period = model.performedPeriod
            when = to_date(model.performedDateTime or (period.start if period else None))
        else:
            when = to_date(model.authoredOn)
        if self._dated(when, resource_type, record):
            kind: Literal["procedure", "referral"] = (
                "procedure" if resource_type == "Procedure" else "referral"
            )
            record.augmentations.append(
                AugmentationRecord(_ref(resource_type, raw), kind, label or kind, when)
            )

    def _valid(self, model_type: type[Any], raw: Mapping[str, Any] | None, record: PatientRecord) -> Any:
        name = model_type.__name__
        if raw is None:
            record.skipped[f"{name} invalid"] += 1
            return None
        try:
            return model_type.model_validate(raw)
        except (ValidationError, ValueError, TypeError, RecursionError):
            record.skipped[f"{name} invalid"] += 1
            return None

    def _birth_date(self, record: PatientRecord) -> date | None:
        """Read the Patient only when a date is given as an age: most calls never need it."""
        if not self._birth_read:
            self._birth_read = True
            for view in self._patients:
                model = self._valid(Patient, view.full(), record)
                if model is not None and model.birthDate is not None:
                    record.birth_date = to_date(model.birthDate)
        return record.birth_date

    def _read_condition(self, view: Resource, record: PatientRecord) -> None:
        raw = view.light
        code = raw.get("code")
        meaning = (
            self.terminology.meaning_of_codings(code.get("coding")) if isinstance(code, Mapping) else None
        )
        if meaning is None:
            return  # nothing the rules know: not worth a model
        full = view.full()
        if full is not None and "abatementBoolean" in full:
            # STU3's abatementBoolean is not R4, but records still carry it: true means abated.
            if full["abatementBoolean"] is True:
                return
            full = {k: v for k, v in full.items() if k != "abatementBoolean"}
        model = self._valid(Condition, full, record)
        if model is None:
            return
        params = self.params
        if not _status_counts(model.clinicalStatus, params.counting_clinical_status):
            return
        if not _status_counts(model.verificationStatus, params.counting_verification_status):
            return
        birth = self._birth_date(record) if model.onsetAge or model.abatementAge else None
        if _is_abated(model, self.today, birth):
            return
        when = condition_date(model, birth)
        if not self._dated(when, "Condition", record):
            return
        assert isinstance(code, Mapping)
        codings = tuple(c for c in listed(code.get("coding")) if isinstance(c, Mapping))
        record.conditions.append(
            ConditionFinding(
                ref=_ref("Condition", raw),
                label=_label(code, "Condition"),
                meaning=meaning,
                codings=codings,
                date=when,
                body_site=_body_site(full.get("bodySite") if full else None, self.terminology),
            )
        )

    def _read_study(self, view: Resource, record: PatientRecord) -> None:
        raw = view.light
        if _status(raw) in self.params.excluded_study_status:
            return
        scan = _scan_study(raw, self.terminology)
        if scan is None:
            return
        model = self._valid(ImagingStudy, _without_instances(view.full()), record)
        if model is None:
            return
        started = to_date(model.started) if model.started is not None else None
        if not self._dated(started, "ImagingStudy", record):
            return
        site, procedure = scan
        modality_system = self.params.modality_system
        codings = list(model.modality or []) + [s.modality for s in model.series or [] if s.modality]
        modalities = {c.code.upper() for c in codings if c.code and c.system in (None, modality_system)}
        if not modalities and procedure is not None and procedure.modality:
            modalities.add(procedure.modality)
        reason: CodeMeaning | None = None
        reason_codings: list[Mapping[str, Any]] = []
        for concept in listed(raw.get("reasonCode")):
            if not isinstance(concept, Mapping):
                continue
            for coding in listed(concept.get("coding")):
                found = (
                    self.terminology.meaning(coding.get("system"), coding.get("code"))
                    if isinstance(coding, Mapping)
                    else None
                )
                if found is not None and self.terminology.triggers(found.concepts):
                    reason = found.merge(reason)
                    reason_codings.append(coding)
        level = site.level if site else None
        region = site.region if site else None
        record.spine_studies.append(
            SpineStudy(
                ref=_ref("ImagingStudy", raw),
                label=_study_label(raw),
                started=started,
                modalities=frozenset(modalities),
                level=level,
                region=region,
                reason=reason,
                reason_codings=tuple(reason_codings),
            )
        )


def _without_instances(study: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A study's series without their instance lists: the rules never read instances, and a real
    MRI lists hundreds, each a model to validate."""
    series = study.get("series") if study is not None else None
    if study is None or not isinstance(series, list):
        return study
    return {
        **study,
        "series": [
            {k: v for k, v in s.items() if k != "instance"} if isinstance(s, dict) else s for s in series
        ],
    }


def _views(resources: Mapping[str, Sequence[object]], resource_type: str) -> Iterable[Resource]:
    """Resources of one type as scan views; anything else in the list is ignored."""
    for item in resources.get(resource_type, ()):
        view = as_resource(item)
        if view is not None and view.resource_type == resource_type:
            yield view


_MODELS: dict[str, type[Any]] = {
    "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement,
    "AllergyIntolerance": AllergyIntolerance,
    "Procedure": Procedure,
    "ServiceRequest": ServiceRequest,
}


def _raw_codes(concept: object) -> set[str]:
    if not isinstance(concept, Mapping) or not isinstance(concept.get("coding"), list):
        return set()
    return {c["code"] for c in concept["coding"] if isinstance(c, Mapping) and isinstance(c.get("code"), str)}


def _raw_status_counts(concept: object, counting: frozenset[str]) -> bool:
    codes = _raw_codes(concept)
    return not codes or bool(codes & counting)


def _medication_concepts(raw: RawResource) -> list[object]:
    """The medication's CodeableConcept, a contained Medication's code, and a reference's display."""
    concepts: list[object] = [raw.get("medicationCodeableConcept")]
    reference = raw.get("medicationReference")
    if isinstance(reference, Mapping):
        if isinstance(reference.get("display"), str):
            concepts.append({"text": reference["display"]})
        target = reference.get("reference")
        contained = raw.get("contained")
        if isinstance(target, str) and target.startswith("#") and isinstance(contained, list):
            for item in contained:
                if (
                    isinstance(item, Mapping)
                    and item.get("resourceType") == "Medication"
                    and item.get("id") == target[1:]
                ):
                    concepts.append(item.get("code"))
    return concepts


def _fact_date(model: Any) -> date | None:
    """When the order was written, the statement's period began, or the allergy started."""
    period = getattr(model, "effectivePeriod", None)
    candidates = (
        getattr(model, "authoredOn", None),
        getattr(model, "effectiveDateTime", None),
        period.start if period is not None else None,
        getattr(model, "dateAsserted", None),
        getattr(model, "onsetDateTime", None),
        getattr(model, "recordedDate", None),
    )
    return next((to_date(value) for value in candidates if value is not None), None)


def _study_label(raw: RawResource) -> str:
    description = raw.get("description")
    if isinstance(description, str) and description.strip():
        return description.strip()
    procedures = raw.get("procedureCode")
    if isinstance(procedures, list) and procedures:
        return _label(procedures[0], "Spine imaging")
    return "Spine imaging"


def _scan_study(
    raw: RawResource, terminology: Terminology
) -> tuple[CodeMeaning | None, CodeMeaning | None] | None:
    """Cheap look at raw JSON: (series body-site meaning, procedure meaning) if spine, else None."""
    texts: list[str] = []
    if isinstance(raw.get("description"), str):
        texts.append(raw["description"])
    site: CodeMeaning | None = None
    series = raw.get("series")
    for item in series if isinstance(series, list) else ():
        if not isinstance(item, Mapping):
            continue
        if isinstance(item.get("description"), str):
            texts.append(item["description"])
        body = item.get("bodySite")
        if isinstance(body, Mapping):
            found = terminology.meaning(body.get("system"), body.get("code"))
            if isinstance(body.get("display"), str):
                found = (
                    found.merge(_text_meaning([body["display"]], terminology))
                    if found
                    else _text_meaning([body["display"]], terminology)
                )
            site = found.merge(site) if found else site
    procedure: CodeMeaning | None = None
    procedures = raw.get("procedureCode")
    for concept in procedures if isinstance(procedures, list) else ():
        if isinstance(concept, Mapping):
            found = terminology.meaning_of_codings(concept.get("coding"))
            procedure = found.merge(procedure) if found else procedure
            texts.extend(_concept_texts([concept]))
    is_spine_procedure = procedure is not None and "spine-imaging-procedure" in procedure.concepts
    joined = " ".join(texts)
    text_spine = bool(joined) and (
        terminology.text_matches("spine-body-site", joined)
        or terminology.text_matches("spine-imaging-procedure", joined)
    )
    if (site is not None and site.is_spine) or is_spine_procedure or text_spine:
        if text_spine and (site is None or site.level is None):
            site = (site or CodeMeaning(frozenset())).merge(
                _text_meaning([joined], terminology, with_level=False)
            )
        return site, procedure
    return None
