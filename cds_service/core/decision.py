"""The referral decision for one patient on one day: a pure function of the record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from cds_service.core.contraindications import Contraindication, find_contraindications
from cds_service.core.fractures import Fracture, FractureEvidence, FractureFinder, studies_in_window
from cds_service.core.record import AugmentationRecord, PatientRecord, SpineStudy
from cds_service.core.terminology import Terminology

Recommendation = Literal["refer", "contraindicated"]


@dataclass(frozen=True)
class ImagingSummary:
    """§4: the relevant spine studies (started from 30 days before a fracture until now)."""

    studies: tuple[SpineStudy, ...]
    acuity_confirmed: bool
    acuity_studies: tuple[SpineStudy, ...]


@dataclass(frozen=True)
class ReferralDecision:
    as_of: date
    fractures: tuple[Fracture, ...]
    imaging: ImagingSummary
    contraindications: tuple[Contraindication, ...]
    latest_past_fracture: FractureEvidence | None
    unavailable: frozenset[str]
    recent_days: int
    prior_augmentation: tuple[AugmentationRecord, ...] = ()
    """Procedures or referrals dated on or after every recent fracture: they silence patient-view."""
    undated_augmentation: tuple[AugmentationRecord, ...] = ()
    addressed_fractures: tuple[tuple[Fracture, AugmentationRecord], ...] = ()
    """Fractures already treated or referred while another recent one is not: said on the card."""

    @property
    def has_recent_fracture(self) -> bool:
        return bool(self.fractures)

    @property
    def absolute(self) -> tuple[Contraindication, ...]:
        return tuple(c for c in self.contraindications if c.kind == "absolute")

    @property
    def recommendation(self) -> Recommendation | None:
        """patient-view: None when there is nothing to say (no recent fracture, or every one already
        treated or referred). An absolute contraindication overrides everything else."""
        if not self.fractures or self.prior_augmentation:
            return None
        return "contraindicated" if self.absolute else "refer"

    @property
    def needs_warning(self) -> bool:
        return bool(self.absolute) or any(c.warning for c in self.contraindications)


def summarise_imaging(
    record: PatientRecord, fractures: tuple[Fracture, ...], terminology: Terminology, today: date
) -> ImagingSummary:
    lookback = timedelta(days=terminology.parameters.imaging_lookback_days)
    relevant: dict[str, SpineStudy] = {}
    for fracture in fractures:
        for study in studies_in_window(record.spine_studies, fracture.diagnosed_on - lookback, today):
            relevant[study.ref] = study
    studies = tuple(sorted(relevant.values(), key=lambda s: (s.started or today, s.ref)))
    acuity = tuple(s for s in studies if s.modalities & terminology.parameters.acuity_modalities)
    return ImagingSummary(studies, bool(acuity), acuity)


def decide_referral(
    record: PatientRecord, terminology: Terminology, today: date, recent_days: int | None = None
) -> ReferralDecision:
    """Fractures, imaging and contraindications of `record` as of `today` (no clock read here)."""
    window = terminology.parameters.recent_days if recent_days is None else recent_days
    assessment = FractureFinder(record, terminology, today, window).assess()
    fractures = assessment.recent
    dated = [a for a in record.augmentations if a.date is not None]
    addressed = [[a for a in dated if a.date is not None and a.date >= f.diagnosed_on] for f in fractures]
    prior = tuple({a.ref: a for found in addressed for a in found}.values()) if all(addressed) else ()
    partly = (
        () if prior else tuple((f, found[0]) for f, found in zip(fractures, addressed, strict=True) if found)
    )
    return ReferralDecision(
        as_of=today,
        fractures=fractures,
        imaging=summarise_imaging(record, fractures, terminology, today),
        contraindications=find_contraindications(record, fractures, terminology, today) if fractures else (),
        latest_past_fracture=assessment.latest_past,
        unavailable=record.unavailable,
        recent_days=window,
        prior_augmentation=prior,
        undated_augmentation=tuple(a for a in record.augmentations if a.date is None),
        addressed_fractures=partly,
    )
