"""§5: contraindication notes, each with its kind and the records that produced it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from cds_service.core.explain import Trace
from cds_service.core.record import ClinicalFact, ConditionFinding, PatientRecord
from cds_service.core.rules.fractures import Fracture
from cds_service.core.terminology import ContraindicationRule, Kind, Terminology

KIND_ORDER: dict[Kind, int] = {"absolute": 0, "relative": 1, "not-advised": 2}


@dataclass(frozen=True)
class Contraindication:
    code: str
    kind: Kind
    evidence: tuple[str, ...]
    labels: tuple[str, ...]
    undated: bool = False
    warning: bool = False
    dated_labels: tuple[tuple[str, date | None], ...] = ()
    """Each label with the latest date it carries (None: undated), so a card can say when."""


def _dated_labels(items: Sequence[tuple[str, date | None]]) -> tuple[tuple[str, date | None], ...]:
    latest: dict[str, date | None] = {}
    for label, when in items:
        known = latest.get(label)
        latest[label] = when if known is None or (when is not None and when > known) else known
    return tuple(latest.items())


def _is_stale(rule: ContraindicationRule, when: date | None, today: date) -> bool:
    """Acute problems (infection, pregnancy) go stale; undated ones still count."""
    return (
        rule.stale_after_days is not None and when is not None and (today - when).days > rule.stale_after_days
    )


def find_contraindications(
    record: PatientRecord,
    fractures: Sequence[Fracture],
    terminology: Terminology,
    today: date,
    trace: Trace | None = None,
) -> tuple[Contraindication, ...]:
    found: dict[str, tuple[ContraindicationRule, list[tuple[str, str, date | None]]]] = {}
    items: list[ConditionFinding | ClinicalFact] = [*record.conditions, *record.facts]
    for item in items:
        for rule in terminology.contraindication_rules(item.concepts):
            if not _is_stale(rule, item.date, today):
                found.setdefault(rule.code, (rule, []))[1].append((item.ref, item.label, item.date))
            elif trace is not None:
                trace.set_aside(
                    item.ref, f"{rule.code} too old to count (over {rule.stale_after_days} days)", item.date
                )
    notes = [
        Contraindication(
            code=rule.code,
            kind=rule.kind,
            evidence=tuple(sorted({ref for ref, _, _ in items})),
            labels=tuple(dict.fromkeys(label for _, label, _ in items)),
            undated=all(when is None for _, _, when in items),
            warning=rule.warning,
            dated_labels=_dated_labels([(label, when) for _, label, when in items]),
        )
        for rule, items in found.values()
    ]
    params = terminology.parameters
    levels = {f.level for f in fractures if f.level}
    if len(levels) > params.multiple_levels_more_than:
        rule = params.multiple_levels
        refs = sorted({s.ref for f in fractures for s in f.sources})
        notes.append(Contraindication(rule.code, rule.kind, tuple(refs), tuple(sorted(levels))))
    malignancy = params.malignancy_on_record
    if any(f.etiology == "osteoporotic" for f in fractures):
        cancers = [c for c in record.conditions if params.malignancy_valueset in c.concepts]
        if cancers:
            notes.append(
                Contraindication(
                    malignancy.code,
                    malignancy.kind,
                    tuple(sorted({c.ref for c in cancers})),
                    tuple(dict.fromkeys(c.label for c in cancers)),
                    dated_labels=_dated_labels([(c.label, c.date) for c in cancers]),
                )
            )
    notes.sort(key=lambda n: (KIND_ORDER[n.kind], n.code))
    return tuple(notes)
