"""ImagingStudy (§4): spine studies, their modality, level, status and any fracture reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

import msgspec

from cds_service.core.record.dates import read_date
from cds_service.core.record.fhir_json import (
    CodeableConcept,
    Coding,
    ResourceView,
    concept_label,
    concept_texts,
)
from cds_service.core.record.reading import Reading, UnreadableError
from cds_service.core.terminology import CodeMeaning


class Series(msgspec.Struct, rename="camel", kw_only=True, frozen=True, gc=False):
    body_site: Coding | None = None
    modality: Coding | None = None
    description: str | None = None


class ImagingStudyView(ResourceView, kw_only=True):
    status: str | None = None
    started: str | None = None
    description: str | None = None
    modality: tuple[Coding, ...] = ()
    procedure_code: tuple[CodeableConcept, ...] = ()
    reason_code: tuple[CodeableConcept, ...] = ()
    series: tuple[Series, ...] = ()

    IDENTIFYING: ClassVar[frozenset[str]] = frozenset({"procedureCode", "series", "reasonCode"})
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset({"status", "started"})


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
    reason_codings: tuple[Coding, ...]
    supports: bool = True
    """False for a study that is only scheduled (`registered`, or `unknown` without series): its
    reason still counts as imaging-reason evidence, but it never supports or confirms (§4)."""


def _study_label(view: ImagingStudyView) -> str:
    if view.description and view.description.strip():
        return view.description.strip()
    if view.procedure_code:
        return concept_label(view.procedure_code[0], "Spine imaging")
    return "Spine imaging"


def _spine_site(view: ImagingStudyView, reading: Reading) -> tuple[CodeMeaning | None, bool]:
    """(series body-site / text meaning, is spine) from codes and free text (§4)."""
    terminology = reading.terminology
    texts = [view.description] if view.description else []
    site: CodeMeaning | None = None
    for item in view.series:
        if item.description:
            texts.append(item.description)
        found = reading.coding_meaning(item.body_site)
        site = found.merge(site) if found else site
    procedure: CodeMeaning | None = None
    for concept in view.procedure_code:
        found = terminology.meaning_of_concept(concept)
        procedure = found.merge(procedure) if found else procedure
    texts.extend(concept_texts(view.procedure_code))
    is_spine_procedure = procedure is not None and "spine-imaging-procedure" in procedure.concepts
    joined = " ".join(texts)
    text_spine = bool(joined) and (
        terminology.text_matches("spine-body-site", joined)
        or terminology.text_matches("spine-imaging-procedure", joined)
    )
    if not ((site is not None and site.is_spine) or is_spine_procedure or text_spine):
        return None, False
    if text_spine and (site is None or site.level is None):
        site = (site or CodeMeaning(frozenset())).merge(reading.text_meaning([joined], with_level=False))
    if procedure is not None and procedure.modality:
        site = (site or CodeMeaning(frozenset())).merge(CodeMeaning(frozenset(), modality=procedure.modality))
    return site, True


def read_imaging_study(view: ImagingStudyView, reading: Reading) -> SpineStudy | None:
    params = reading.terminology.parameters
    status = (view.status or "").strip().lower()
    if status in params.excluded_study_status:
        reading.aside(view, "status", status)
        return None
    site, is_spine = _spine_site(view, reading)
    if not is_spine:
        reading.aside(view, "not spine imaging")
        return None
    try:
        started = read_date(view.started)
    except ValueError as error:
        raise UnreadableError("started") from error
    if not reading.plausible(started, "ImagingStudy"):
        reading.aside(view, "future date", started)
        return None
    system = params.modality_system
    codings = [*view.modality, *(s.modality for s in view.series if s.modality)]
    modalities = {
        c.code.strip().upper() for c in codings if c.code and (c.system or system).strip() == system
    }
    if not modalities and site is not None and site.modality:
        modalities.add(site.modality)
    reason, reason_codings = reading.trigger_codings(view.reason_code)
    supports = status in params.supporting_study_status or (
        status in params.supporting_with_series_study_status and bool(view.series)
    )
    return SpineStudy(
        ref=view.ref,
        label=_study_label(view),
        started=started,
        modalities=frozenset(modalities),
        level=site.level if site else None,
        region=site.region if site else None,
        reason=reason,
        reason_codings=reason_codings,
        supports=supports,
    )
