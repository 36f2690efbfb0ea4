"""§4 Imaging: which spine studies are relevant to a fracture, and whether any confirms acuity."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.core.record import SpineStudy
from cds_service.core.terminology import ClinicalParameters


@dataclass(frozen=True)
class ImagingSummary:
    """The relevant spine studies (started from 30 days before a fracture until now)."""

    studies: tuple[SpineStudy, ...]
    acuity_confirmed: bool
    acuity_studies: tuple[SpineStudy, ...]
    acuity_reports: tuple[str, ...] = ()
    """Radiology reports (refs) whose MR or bone-scan finding was acute at a recent fracture (§7)."""


def studies_in_window(studies: Iterable[SpineStudy], since: date, today: date) -> list[SpineStudy]:
    """Supporting spine studies started between `since` and today (the tolerated day included).

    A study only scheduled (`registered`) never supports a fracture or confirms its acuity."""
    return [
        s
        for s in studies
        if s.supports and s.started is not None and since <= s.started <= today + timedelta(days=1)
    ]


def summarise_imaging(
    studies: Iterable[SpineStudy], fracture_dates: Iterable[date], params: ClinicalParameters, today: date
) -> ImagingSummary:
    lookback = timedelta(days=params.imaging_lookback_days)
    all_studies = list(studies)
    relevant: dict[str, SpineStudy] = {}
    for diagnosed_on in fracture_dates:
        for study in studies_in_window(all_studies, diagnosed_on - lookback, today):
            relevant[study.ref] = study
    ordered = tuple(sorted(relevant.values(), key=lambda s: (s.started or today, s.ref)))
    acuity = tuple(s for s in ordered if s.modalities & params.acuity_modalities)
    return ImagingSummary(ordered, bool(acuity), acuity)
