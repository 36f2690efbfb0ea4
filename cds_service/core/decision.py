"""The decisions, one per hook kind: pure functions of the record, the value sets and the day.

patient-view gets a ReferralDecision (refer / contraindicated / nothing); the order hooks get an
OrderDecision built on the same assessment (one copy of the rules), without the patient-view
suppressions. Card builders only render these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from cds_service.core.explain import Trace, explain_decision
from cds_service.core.orders import AugmentationOrder
from cds_service.core.record import AugmentationRecord, PatientRecord
from cds_service.core.rules.contraindications import Contraindication, find_contraindications
from cds_service.core.rules.fractures import Fracture, FractureEvidence, FractureFinder
from cds_service.core.rules.imaging import ImagingSummary, summarise_imaging
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


def _assess(
    record: PatientRecord, terminology: Terminology, today: date, recent_days: int, trace: Trace | None
) -> tuple[tuple[Fracture, ...], FractureEvidence | None, ImagingSummary, tuple[Contraindication, ...]]:
    assessment = FractureFinder(record, terminology, today, recent_days, trace).assess()
    fractures = assessment.recent
    imaging = summarise_imaging(
        record.spine_studies, (f.diagnosed_on for f in fractures), terminology.parameters, today
    )
    contraindications = (
        find_contraindications(record, fractures, terminology, today, trace) if fractures else ()
    )
    return fractures, assessment.latest_past, imaging, contraindications


def decide_referral(
    record: PatientRecord,
    terminology: Terminology,
    today: date,
    recent_days: int,
    trace: Trace | None = None,
) -> ReferralDecision:
    """patient-view: fractures, imaging, contraindications and suppression as of `today`.
    `trace` (explain only) is told what each resource matched, and the decision."""
    fractures, latest_past, imaging, contraindications = _assess(
        record, terminology, today, recent_days, trace
    )
    suppression = find_suppression(fractures, record.augmentations)
    deceased = record.patient.deceased
    recommendation: Recommendation | None = None
    if fractures and not suppression.prior and not deceased:
        absolute = any(c.kind == "absolute" for c in contraindications)
        recommendation = "contraindicated" if absolute else "refer"
    decision = ReferralDecision(
        as_of=today,
        recommendation=recommendation,
        fractures=fractures,
        imaging=imaging,
        contraindications=contraindications,
        latest_past_fracture=latest_past,
        unavailable=record.unavailable,
        recent_days=recent_days,
        unreadable=dict(record.unreadable),
        deceased=deceased,
        prior_augmentation=suppression.prior,
        undated_augmentation=suppression.undated,
        addressed_fractures=suppression.addressed,
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
    fractures, latest_past, imaging, contraindications = _assess(
        record, terminology, today, recent_days, trace
    )
    assessed = ReferralDecision(
        as_of=today,
        recommendation=None,
        fractures=fractures,
        imaging=imaging,
        contraindications=contraindications,
        latest_past_fracture=latest_past,
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
