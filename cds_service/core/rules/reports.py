"""§7 Radiology reports: fracture evidence from what radiologists wrote (coded conclusions and
sentences), the fractures reported without sign of age, and the discordant-imaging notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.core.record import PatientRecord
from cds_service.core.record.diagnostic_report import RadiologyReport
from cds_service.core.rules.contraindications import Contraindication
from cds_service.core.rules.fractures import Fracture, FractureEvidence, ReportFinding
from cds_service.core.rules.imaging import studies_in_window
from cds_service.core.rules.triggers import fracture_etiology
from cds_service.core.terminology import Etiology, Terminology, region_of_level


@dataclass(frozen=True)
class ReportMention:
    """A sentence that raised a fracture without asserting it (uncertain): said when a card is
    shown anyway, never a trigger."""

    report: RadiologyReport
    level: str | None
    quote: str


@dataclass(frozen=True)
class ReportEvidence:
    recent: tuple[FractureEvidence, ...]
    """Acute text findings and coded conclusions: recent fracture evidence like a Condition."""
    unqualified: tuple[FractureEvidence, ...]
    """Fractures reported with no sign of age (typically incidental deformities)."""
    uncertain: tuple[ReportMention, ...]
    chronic: tuple[FractureEvidence, ...] = ()
    """Fractures reported as old: never recent by themselves; they describe a recent one."""


def report_etiology(record: PatientRecord, terminology: Terminology) -> Etiology:
    """§7: osteoporotic with osteoporosis on record; pathologic with a bone malignancy and no
    osteoporosis; otherwise unspecified."""
    if record.has_concept("osteoporosis"):
        return "osteoporotic"
    if record.has_concept(terminology.parameters.malignancy_valueset):
        return "pathologic"
    return "unspecified"


def _evidence(
    report: RadiologyReport,
    etiology: Etiology,
    level: str | None,
    region: str | None,
    classification: str,
    quote: str | None,
) -> FractureEvidence:
    where = region_of_level(level) if level else region
    finding = ReportFinding(
        report.ref,
        report.status,
        report.modality,
        "acute" if classification == "acute" else "chronic" if classification == "chronic" else "unqualified",
        quote,
        report.date,
    )
    return FractureEvidence(
        report.ref, "imaging-report", etiology, report.date, level, where, report.label, (), finding
    )


def read_report_evidence(record: PatientRecord, terminology: Terminology, today: date) -> ReportEvidence:
    recent: list[FractureEvidence] = []
    unqualified: list[FractureEvidence] = []
    uncertain: list[ReportMention] = []
    chronic: list[FractureEvidence] = []
    text_etiology = report_etiology(record, terminology)
    lookback = timedelta(days=terminology.parameters.imaging_lookback_days)
    for report in record.reports:
        if report.coded is not None:
            rules = terminology.triggers(report.coded.concepts)
            near = report.date is not None and bool(
                studies_in_window(record.spine_studies, report.date - lookback, today)
            )
            etiology = fracture_etiology(
                rules, record, None, self_corroborated=report.spine, spine_imaging_near=near
            )
            if etiology is not None:
                level = report.coded.level
                recent.append(_evidence(report, etiology, level, report.coded.region, "acute", None))
        for finding in report.findings:
            if finding.classification == "acute":
                recent.append(
                    _evidence(report, text_etiology, finding.level, finding.region, "acute", finding.quote)
                )
            elif finding.classification == "unqualified":
                unqualified.append(
                    _evidence(
                        report, text_etiology, finding.level, finding.region, "unqualified", finding.quote
                    )
                )
            elif finding.classification == "chronic":
                chronic.append(
                    _evidence(report, text_etiology, finding.level, finding.region, "chronic", finding.quote)
                )
            elif finding.classification == "uncertain":
                uncertain.append(ReportMention(report, finding.level, finding.quote))
    return ReportEvidence(tuple(recent), tuple(unqualified), tuple(uncertain), tuple(chronic))


def discordant_imaging_notes(
    record: PatientRecord, fractures: Sequence[Fracture], terminology: Terminology
) -> list[Contraindication]:
    """§7 imaging-chronic: the latest MR or bone-scan report at a recent fracture's level calls it
    chronic. imaging-discordant: the only spine MR after a coded recent fracture reports no
    fracture at all. Both ask to confirm before referral."""
    params = terminology.parameters
    acuity = params.acuity_modalities
    notes: list[Contraindication] = []
    chronic_refs: dict[str, str] = {}
    for fracture in fractures:
        if not fracture.level:
            continue
        at_level = [
            (report, finding)
            for report in record.reports
            if report.modality in acuity
            for finding in report.findings
            if finding.level == fracture.level and finding.classification != "negated"
        ]
        if not at_level:
            continue
        latest = max(at_level, key=lambda rf: (rf[0].date or date.min, rf[0].ref))
        if latest[1].classification == "chronic":
            chronic_refs[latest[0].ref] = latest[0].label
    if chronic_refs:
        rule = params.imaging_chronic
        notes.append(
            Contraindication(rule.code, rule.kind, tuple(sorted(chronic_refs)), tuple(chronic_refs.values()))
        )
    discordant: dict[str, str] = {}
    for fracture in fractures:
        if fracture.basis != "condition":
            continue
        after = [
            r
            for r in record.reports
            if r.spine and r.modality == "MR" and r.date is not None and r.date >= fracture.diagnosed_on
        ]
        asserted = len(after) == 1 and any(f.classification != "negated" for f in after[0].findings)
        if len(after) == 1 and not asserted and after[0].coded is None:
            discordant[after[0].ref] = after[0].label
    if discordant:
        rule = params.imaging_discordant
        notes.append(
            Contraindication(rule.code, rule.kind, tuple(sorted(discordant)), tuple(discordant.values()))
        )
    return notes
