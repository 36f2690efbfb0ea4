"""DiagnosticReport (§7): radiology reports, their status, date, modality, coded conclusions and
the fracture mentions in their text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from cds_service.core.record.dates import read_date
from cds_service.core.record.fhir_json import (
    CodeableConcept,
    Coding,
    Period,
    ResourceView,
    concept_label,
    concept_texts,
)
from cds_service.core.record.reading import Reading, UnreadableError
from cds_service.core.rules.report_text import (
    TextFinding,
    extract_report_text,
    find_fracture_mentions,
    report_modality,
)
from cds_service.core.terminology import CodeMeaning


class DiagnosticReportView(ResourceView, kw_only=True):
    status: str | None = None
    category: tuple[CodeableConcept, ...] = ()
    code: CodeableConcept | None = None
    effective_date_time: str | None = None
    effective_period: Period | None = None
    issued: str | None = None
    conclusion: Any = None
    conclusion_code: tuple[CodeableConcept, ...] = ()
    presented_form: tuple[Any, ...] = ()

    IDENTIFYING: ClassVar[frozenset[str]] = frozenset({"category", "code"})
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset(
        {"status", "effectiveDateTime", "effectivePeriod", "issued", "conclusionCode"}
    )


@dataclass(frozen=True)
class RadiologyReport:
    """A radiology report that counts (§7), with what its conclusion codes and text assert."""

    ref: str
    label: str
    date: date | None
    status: str
    modality: str | None
    spine: bool
    """A spine report (§4 codes or text): it corroborates its own conditional conclusion codes."""
    coded: CodeMeaning | None
    coded_codings: tuple[Coding, ...]
    findings: tuple[TextFinding, ...]

    @property
    def preliminary(self) -> bool:
        return self.status == "preliminary"


def read_diagnostic_report(view: DiagnosticReportView, reading: Reading) -> RadiologyReport | None:
    terminology = reading.terminology
    params = terminology.parameters
    code_meaning = terminology.meaning_of_concept(view.code)
    concepts: set[str] = set(code_meaning.concepts) if code_meaning is not None else set()
    for concept in view.category:
        meaning = terminology.meaning_of_concept(concept)
        if meaning is not None:
            concepts |= meaning.concepts
    if not concepts & params.radiology_report_concepts:
        reading.aside(view, "not a radiology report")
        return None
    status = (view.status or "").strip().lower()
    if status not in params.counting_report_status:
        reading.aside(view, "report status", status or "none")
        return None
    period = view.effective_period
    try:
        when = (
            read_date(view.effective_date_time)
            or read_date(period.start if period else None)
            or read_date(view.issued)
        )
    except ValueError as error:
        raise UnreadableError("date") from error
    if not reading.plausible(when, "DiagnosticReport"):
        return None
    if when is not None and reading.oldest_relevant is not None and when < reading.oldest_relevant:
        reading.skipped["DiagnosticReport older than the window"] += 1
        # Most reports of a long record end here: the date is spelt out only for a trace.
        if reading.trace is not None:
            reading.aside(view, "older than the window", when.isoformat())
        return None  # the text is what costs: reports that cannot matter are not read
    coded, coded_codings = reading.trigger_codings(view.conclusion_code)
    text = extract_report_text(view.conclusion, view.presented_form, params.report_text_limit)
    if text.unreadable and coded is None:
        raise UnreadableError("presentedForm")
    code_texts = concept_texts([view.code])
    joined = " ".join(code_texts)
    spine = (code_meaning is not None and "spine-imaging-procedure" in code_meaning.concepts) or bool(
        joined and terminology.text_matches("spine-body-site", joined)
    )
    modality = (code_meaning.modality if code_meaning else None) or report_modality(
        code_texts, terminology.report_terms
    )
    modality = params.report_modalities.get(modality, modality) if modality else None
    findings = find_fracture_mentions(text.text, terminology.report_terms) if text.text else ()
    return RadiologyReport(
        ref=view.ref,
        label=concept_label(view.code, "Radiology report"),
        date=when,
        status=status,
        modality=modality,
        spine=spine,
        coded=coded,
        coded_codings=coded_codings,
        findings=tuple(findings),
    )
