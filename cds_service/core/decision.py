"""The decisions, one per hook kind: pure functions of the record, the value sets and the day.

patient-view gets a ReferralDecision (refer / contraindicated / nothing); the order hooks get an
OrderDecision built on the same assessment (one copy of the rules), without the patient-view
suppressions. Card builders only render these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from cds_service.core.explain import Trace, explain_decision
from cds_service.core.orders import AugmentationOrder
from cds_service.core.record import AugmentationRecord, PatientRecord
from cds_service.core.rules.contraindications import KIND_ORDER, Contraindication, find_contraindications
from cds_service.core.rules.fractures import Fracture, FractureEvidence, FractureFinder, group_by_level
from cds_service.core.rules.imaging import ImagingSummary, summarise_imaging
from cds_service.core.rules.reports import ReportMention, discordant_imaging_notes, read_report_evidence
from cds_service.core.rules.suppression import find_suppression
from cds_service.core.terminology import Terminology

Recommendation = Literal["refer", "contraindicated", "evaluate"]
OrderRecommendation = Literal["order-not-supported", "contraindicated", "order-caution"]


@dataclass(frozen=True)
class ReferralDecision:
    """What the record says on one day, and what patient-view answers."""

    as_of: date
    recommendation: Recommendation | None
    """None when there is nothing to say (no recent fracture, every one already treated or
    referred, or the patient has died)."""
    fractures: tuple[Fracture, ...]
    imaging: ImagingSummary
    contraindications: tuple[Contraindication, ...]
    latest_past_fracture: FractureEvidence | None
    unavailable: frozenset[str]
    recent_days: int
    unreadable: Mapping[str, int] = field(default_factory=dict)
    """Resources per type that matter but could not be read (§1a): the card says so."""
    deceased: bool = False
    prior_augmentation: tuple[AugmentationRecord, ...] = ()
    """Procedures or referrals dated on or after every recent fracture: they silence patient-view."""
    undated_augmentation: tuple[AugmentationRecord, ...] = ()
    addressed_fractures: tuple[tuple[Fracture, AugmentationRecord], ...] = ()
    """Fractures already treated or referred while another recent one is not: said on the card."""
    reported: tuple[Fracture, ...] = ()
    """§7: fractures a recent radiology report names with no sign of age and no recent fracture
    on record: the `evaluate` card (never a referral: augmentation is not preventive)."""
    uncertain: tuple[ReportMention, ...] = ()
    """§7: 'possible' fractures in reports: never a trigger, said when a card is shown anyway."""

    @property
    def absolute(self) -> tuple[Contraindication, ...]:
        return tuple(c for c in self.contraindications if c.kind == "absolute")

    @property
    def needs_warning(self) -> bool:
        return bool(self.absolute) or any(c.warning for c in self.contraindications)

    @property
    def open_fractures(self) -> tuple[Fracture, ...]:
        """The recent fractures not yet treated or referred: what a referral is for."""
        treated = {id(f) for f, _ in self.addressed_fractures}
        return tuple(f for f in self.fractures if id(f) not in treated)


@dataclass(frozen=True)
class OrderDecision:
    """An order hook's answer for the augmentation orders in hand."""

    recommendation: OrderRecommendation | None
    orders: tuple[AugmentationOrder, ...]
    record: ReferralDecision


@dataclass(frozen=True)
class _Assessment:
    fractures: tuple[Fracture, ...]
    latest_past: FractureEvidence | None
    imaging: ImagingSummary
    contraindications: tuple[Contraindication, ...]
    reported: tuple[Fracture, ...]
    uncertain: tuple[ReportMention, ...]


def _with_descriptions(
    finder: FractureFinder,
    fractures: tuple[Fracture, ...],
    descriptions: list[FractureEvidence],
    terminology: Terminology,
) -> tuple[Fracture, ...]:
    """§7: a report that only describes a recent fracture's level (unqualified, or "unchanged")
    joins its evidence without dating it or making it older."""
    lookback = timedelta(days=terminology.parameters.imaging_lookback_days)
    merged = []
    for fracture in fractures:
        extra = [
            d
            for d in descriptions
            if d.level is not None
            and d.level == fracture.level
            and d.date is not None
            and d.date >= fracture.diagnosed_on - lookback
        ]
        merged.append(finder.fracture([*fracture.sources, *extra]) if extra else fracture)
    return tuple(merged)


def _assess(
    record: PatientRecord, terminology: Terminology, today: date, recent_days: int, trace: Trace | None
) -> _Assessment:
    reports = read_report_evidence(record, terminology, today)
    finder = FractureFinder(record, terminology, today, recent_days, reported=reports.recent, trace=trace)
    assessment = finder.assess()
    acuity_modalities = terminology.parameters.acuity_modalities
    # An MRI or bone scan calling the level chronic is discordant (the imaging-chronic note), not
    # a description of the fracture; a radiograph's "unchanged" is.
    describing = [
        *reports.unqualified,
        *(c for c in reports.chronic if c.report is not None and c.report.modality not in acuity_modalities),
    ]
    fractures = _with_descriptions(finder, assessment.recent, describing, terminology)
    imaging = summarise_imaging(
        record.spine_studies, (f.diagnosed_on for f in fractures), terminology.parameters, today
    )
    acuity = terminology.parameters.acuity_modalities
    acute_reports = tuple(
        sorted(
            {
                r.ref
                for f in fractures
                for r in f.reports
                if r.classification == "acute" and r.modality in acuity
            }
        )
    )
    if acute_reports:
        imaging = ImagingSummary(imaging.studies, True, imaging.acuity_studies, acute_reports)
    contraindications: tuple[Contraindication, ...] = ()
    if fractures:
        notes = [
            *find_contraindications(record, fractures, terminology, today, trace),
            *discordant_imaging_notes(record, fractures, terminology),
        ]
        contraindications = tuple(sorted(notes, key=lambda n: (KIND_ORDER[n.kind], n.code)))
    reported: tuple[Fracture, ...] = ()
    if not fractures:
        pending = [
            e for e in reports.unqualified if e.date is not None and 0 <= (today - e.date).days <= recent_days
        ]
        reported = tuple(finder.fracture(group) for group in group_by_level(pending))
    uncertain = tuple(
        m
        for m in reports.uncertain
        if m.report.date is not None and (today - m.report.date).days <= recent_days
    )
    return _Assessment(fractures, assessment.latest_past, imaging, contraindications, reported, uncertain)


def decide_referral(
    record: PatientRecord,
    terminology: Terminology,
    today: date,
    recent_days: int,
    trace: Trace | None = None,
) -> ReferralDecision:
    """patient-view: fractures, imaging, contraindications and suppression as of `today`.
    `trace` (explain only) is told what each resource matched, and the decision."""
    found = _assess(record, terminology, today, recent_days, trace)
    fractures = found.fractures
    suppression = find_suppression(fractures, record.augmentations)
    deceased = record.patient.deceased
    recommendation: Recommendation | None = None
    if fractures and not suppression.prior and not deceased:
        absolute = any(c.kind == "absolute" for c in found.contraindications)
        recommendation = "contraindicated" if absolute else "refer"
    elif found.reported and not deceased:
        recommendation = "evaluate"
    decision = ReferralDecision(
        as_of=today,
        recommendation=recommendation,
        fractures=fractures,
        imaging=found.imaging,
        contraindications=found.contraindications,
        latest_past_fracture=found.latest_past,
        unavailable=record.unavailable,
        recent_days=recent_days,
        unreadable=dict(record.unreadable),
        deceased=deceased,
        prior_augmentation=suppression.prior,
        undated_augmentation=suppression.undated,
        addressed_fractures=suppression.addressed,
        reported=found.reported,
        uncertain=found.uncertain,
    )
    if trace is not None:
        explain_decision(trace, record, decision, terminology)
    return decision


def decide_order(
    record: PatientRecord,
    orders: Sequence[AugmentationOrder],
    terminology: Terminology,
    today: date,
    recent_days: int,
    trace: Trace | None = None,
) -> OrderDecision:
    """Precedence, one card per call: no recent fracture, then absolute, then relative / not-advised.
    The patient-view suppressions (prior procedure, existing referral, death) do not apply."""
    found = _assess(record, terminology, today, recent_days, trace)
    fractures, contraindications = found.fractures, found.contraindications
    assessed = ReferralDecision(
        as_of=today,
        recommendation=None,
        fractures=fractures,
        imaging=found.imaging,
        contraindications=contraindications,
        latest_past_fracture=found.latest_past,
        unavailable=record.unavailable,
        recent_days=recent_days,
        unreadable=dict(record.unreadable),
        deceased=record.patient.deceased,
    )
    recommendation: OrderRecommendation | None = None
    if orders:
        if not fractures:
            recommendation = "order-not-supported"
        elif assessed.absolute:
            recommendation = "contraindicated"
        elif contraindications:
            recommendation = "order-caution"
    decision = OrderDecision(recommendation, tuple(orders), assessed)
    if trace is not None:
        explain_decision(trace, record, assessed, terminology, decision)
    return decision
