"""§6 (with §2's triggers): which Conditions and imaging orders are a qualifying vertebral
fracture, and how duplicates collapse into one fracture per level."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from cds_service.core.explain import Trace
from cds_service.core.record import ConditionFinding, PatientRecord, SpineStudy
from cds_service.core.record.fhir_json import Coding
from cds_service.core.rules.imaging import studies_in_window
from cds_service.core.rules.triggers import fracture_etiology
from cds_service.core.terminology import Etiology, Terminology, level_sort_key, region_of_level

Basis = Literal["condition", "imaging-report", "imaging-reason"]
ReportClassification = Literal["acute", "unqualified", "chronic"]
_BASIS_ORDER: tuple[Basis, ...] = ("condition", "imaging-report", "imaging-reason")


@dataclass(frozen=True)
class ReportFinding:
    """What a radiology report said of a fracture (§7): the sentence that carried it."""

    ref: str
    status: str
    modality: str | None
    classification: ReportClassification
    quote: str | None
    """None for a coded conclusion (conclusionCode)."""
    date: date | None


@dataclass(frozen=True)
class FractureEvidence:
    """One qualifying source: a fracture Condition, or a spine study ordered for a fracture."""

    ref: str
    basis: Basis
    etiology: Etiology
    date: date | None
    level: str | None
    region: str | None
    label: str
    codings: tuple[Coding, ...] = ()
    report: ReportFinding | None = None


@dataclass(frozen=True)
class Fracture:
    """A recent qualifying fracture at one level (or of unknown level), merged across its sources."""

    etiology: Etiology
    basis: Basis
    level: str | None
    region: str | None
    diagnosed_on: date
    age_days: int
    sources: tuple[FractureEvidence, ...]
    supporting_studies: tuple[SpineStudy, ...]

    @property
    def evidence(self) -> tuple[str, ...]:
        refs = {s.ref for s in self.sources} | {s.ref for s in self.supporting_studies}
        return tuple(sorted(refs))

    @property
    def condition_refs(self) -> tuple[str, ...]:
        return tuple(sorted({s.ref for s in self.sources if s.basis == "condition"}))

    @property
    def reports(self) -> tuple[ReportFinding, ...]:
        """Report findings among the sources, latest first."""
        found = [s.report for s in self.sources if s.report is not None]
        return tuple(
            sorted(
                found, key=lambda r: (r.classification == "acute", r.date or date.min, r.ref), reverse=True
            )
        )


@dataclass(frozen=True)
class FractureAssessment:
    recent: tuple[Fracture, ...]
    latest_past: FractureEvidence | None
    """The most recent qualifying fracture that is too old, so that order checks can say its age."""


class FractureFinder:
    def __init__(
        self,
        record: PatientRecord,
        terminology: Terminology,
        today: date,
        recent_days: int,
        reported: Sequence[FractureEvidence] = (),
        trace: Trace | None = None,
    ) -> None:
        self.reported = tuple(reported)
        """Fracture evidence from radiology reports (§7), read by rules/reports.py."""
        self.record = record
        self.trace = trace
        self.terminology = terminology
        self.today = today
        self.recent_days = recent_days
        self.lookback = timedelta(days=terminology.parameters.imaging_lookback_days)
        self._imaging_near: dict[date, bool] = {}
        """Per date: EHRs repeat one diagnosis per visit, mostly on few dates."""

    def assess(self) -> FractureAssessment:
        evidence = [*self._from_conditions(), *self._from_imaging_reasons(), *self.reported]
        recent = [e for e in evidence if e.date is not None and self._age(e.date) <= self.recent_days]
        past = [e for e in evidence if e.date is not None and self._age(e.date) > self.recent_days]
        latest_past = max(past, key=lambda e: (e.date, e.ref)) if past else None
        if self.trace is not None:
            for e in evidence:
                if e.date is None:
                    self.trace.set_aside(e.ref, "fracture code, undated: cannot be shown recent")
                elif self._age(e.date) > self.recent_days:
                    self.trace.set_aside(
                        e.ref,
                        f"fracture {e.date.isoformat()} not recent: {self._age(e.date)} days old "
                        f"(recent: up to {self.recent_days})",
                    )
        fractures = [self._fracture(group) for group in group_by_level(recent)]
        fractures.sort(key=lambda f: (f.diagnosed_on, level_sort_key(f.level)))
        return FractureAssessment(tuple(fractures), latest_past)

    def _age(self, when: date) -> int:
        return (self.today - when).days

    def _spine_imaging_near(self, when: date | None) -> bool:
        if when is None:
            return False
        near = self._imaging_near.get(when)
        if near is None:
            near = bool(studies_in_window(self.record.spine_studies, when - self.lookback, self.today))
            self._imaging_near[when] = near
        return near

    def _from_conditions(self) -> Iterable[FractureEvidence]:
        for condition in self.record.conditions:
            rules = self.terminology.triggers(condition.concepts)
            if not rules:
                continue
            missed: list[str] | None = [] if self.trace is not None else None
            etiology = fracture_etiology(
                rules,
                self.record,
                condition.body_site,
                self_corroborated=False,
                spine_imaging_near=self._spine_imaging_near(condition.date),
                missed=missed,
            )
            if etiology is not None:
                yield _condition_evidence(condition, etiology)
            elif self.trace is not None and missed:
                self.trace.set_aside(condition.ref, "fracture code, trigger not met: " + "; ".join(missed))

    def _from_imaging_reasons(self) -> Iterable[FractureEvidence]:
        for study in self.record.spine_studies:
            if study.reason is None:
                continue
            rules = self.terminology.triggers(study.reason.concepts)
            missed: list[str] | None = [] if self.trace is not None else None
            etiology = fracture_etiology(
                rules, self.record, None, self_corroborated=True, spine_imaging_near=False, missed=missed
            )
            if etiology is None:
                if self.trace is not None and missed:
                    self.trace.set_aside(
                        study.ref, "ordered for a fracture, trigger not met: " + "; ".join(missed)
                    )
                continue
            level = study.level or study.reason.level
            region = region_of_level(level) if level else (study.region or study.reason.region)
            yield FractureEvidence(
                study.ref,
                "imaging-reason",
                etiology,
                study.started,
                level,
                region,
                study.label,
                study.reason_codings,
            )

    def fracture(self, members: list[FractureEvidence]) -> Fracture:
        """One fracture from evidence grouped by level (§6)."""
        return self._fracture(members)

    def _fracture(self, members: list[FractureEvidence]) -> Fracture:
        conditions = [m for m in members if m.basis == "condition"]
        # A report calling a fracture old ("unchanged") never dates it (§7).
        dating = [m for m in members if m.report is None or m.report.classification != "chronic"]
        dated = [m.date for m in (conditions or dating or members) if m.date is not None]
        diagnosed_on = min(dated)
        level = next((m.level for m in members if m.level), None)
        regions = {m.region for m in members if m.region}
        region = region_of_level(level) if level else (regions.pop() if len(regions) == 1 else None)
        supporting = studies_in_window(self.record.spine_studies, diagnosed_on - self.lookback, self.today)
        return Fracture(
            etiology=merged_etiology(m.etiology for m in members),
            basis=next(b for b in _BASIS_ORDER if any(m.basis == b for m in members)),
            level=level,
            region=region,
            diagnosed_on=diagnosed_on,
            age_days=max(0, self._age(diagnosed_on)),
            sources=tuple(sorted(members, key=lambda m: (m.date or diagnosed_on, m.ref))),
            supporting_studies=tuple(sorted(supporting, key=lambda s: (s.started or diagnosed_on, s.ref))),
        )


def merged_etiology(etiologies: Iterable[Etiology]) -> Etiology:
    """Pathologic wins over osteoporotic, which wins over unspecified (a report without context)."""
    found = set(etiologies)
    for etiology in ("pathologic", "osteoporotic"):
        if etiology in found:
            return etiology
    return "unspecified"


def _condition_evidence(condition: ConditionFinding, etiology: Etiology) -> FractureEvidence:
    site = condition.body_site
    level = (site.level if site else None) or condition.meaning.level
    region = (
        region_of_level(level) if level else ((site.region if site else None) or condition.meaning.region)
    )
    return FractureEvidence(
        condition.ref,
        "condition",
        etiology,
        condition.date,
        level,
        region,
        condition.label,
        condition.codings,
    )


def group_by_level(items: Sequence[FractureEvidence]) -> list[list[FractureEvidence]]:
    """§6: one fracture per known level; level-less items join the single known level when there is
    exactly one, else they all become one fracture of unknown level."""
    by_level: dict[str, list[FractureEvidence]] = {}
    levelless: list[FractureEvidence] = []
    for item in items:
        if item.level:
            by_level.setdefault(item.level, []).append(item)
        else:
            levelless.append(item)
    groups = [by_level[level] for level in sorted(by_level, key=level_sort_key)]
    if len(groups) == 1:
        groups[0].extend(levelless)
    elif levelless:
        groups.append(levelless)
    return groups
