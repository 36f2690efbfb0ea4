"""Why a card did (or did not) appear: per resource read, what it matched or why it was set aside,
then the decision.

A `Trace` is filled by the reader (`read_record`) and the decision functions at the points where they
already drop a resource or use it, so the explanation cannot drift from the rules: there is no second
copy of them here, only wording. It is made for `spine-cds evaluate/try --explain` and the demo-mode
preview; callers pass None otherwise, and nothing of it is ever logged. Lines hold resource refs,
codes, value-set ids and dates, never free text of the record (no report text, no displays).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from cds_service.core.decision import OrderDecision, ReferralDecision
    from cds_service.core.record import PatientRecord
    from cds_service.core.terminology import Terminology

Outcome = Literal["counted", "matched", "set-aside"]

_SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10-cm": "icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10": "icd-10",
    "http://snomed.info/sct": "snomed",
    "http://loinc.org": "loinc",
    "http://www.ama-assn.org/go/cpt": "cpt",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm",
    "http://dicom.nema.org/resources/ontology/DCM": "dicom",
}

_HL7_STATUS = "http://terminology.hl7.org/CodeSystem/"


@dataclass(frozen=True)
class TraceEntry:
    ref: str
    outcome: Outcome
    what: str


def detail_text(detail: object) -> str:
    """A short, text-free rendering of what the reader looked at: codes, status words, dates."""
    if detail is None:
        return ""
    if isinstance(detail, date):
        return detail.isoformat()
    codings = getattr(detail, "coding", None)
    if isinstance(codings, list | tuple):  # a CodeableConcept: its codes, not its text (record words)
        return codes_text(codings) or "(text only)"
    if isinstance(detail, (frozenset, set, list, tuple)):
        return ", ".join(sorted(str(d) for d in detail))
    return str(detail)[:40]


def codes_text(codings: Iterable[Any]) -> str:
    shown = []
    for coding in codings:
        system, code = getattr(coding, "system", None), getattr(coding, "code", None)
        if isinstance(code, str) and code:
            if isinstance(system, str) and system.startswith(_HL7_STATUS):
                shown.append(code)  # a status word: its system says nothing more
                continue
            name = _SYSTEMS.get(system, system) if isinstance(system, str) else "?"
            shown.append(f"{name} {code}")
    return ", ".join(shown)


class Trace:
    """Collects, in reading order, one or more entries per resource and the decision."""

    def __init__(self) -> None:
        self.entries: list[TraceEntry] = []
        self.codes: dict[str, str] = {}
        self.decision: list[str] = []

    def counted(self, ref: str, note: str = "") -> None:
        """The reader kept it (in reading order); the decision step says what it matched."""
        self.entries.append(TraceEntry(ref, "counted", note))

    def matched(self, ref: str, what: str) -> None:
        self.entries.append(TraceEntry(ref, "matched", what))

    def set_aside(self, ref: str, reason: str, detail: object = None) -> None:
        shown = detail_text(detail)
        self.entries.append(TraceEntry(ref, "set-aside", f"{reason}: {shown}" if shown else reason))

    def note_codes(self, ref: str, concept: object) -> None:
        codings = getattr(concept, "coding", None)
        if isinstance(codings, list | tuple) and ref not in self.codes:
            found = codes_text(codings)
            if found:
                self.codes[ref] = found

    def by_resource(self) -> list[tuple[str, list[TraceEntry]]]:
        grouped: dict[str, list[TraceEntry]] = {}
        for entry in self.entries:
            grouped.setdefault(entry.ref, []).append(entry)
        return list(grouped.items())

    def lines(self) -> list[str]:
        """Plain text, one line per resource, then the decision."""
        out = []
        for ref, entries in self.by_resource():
            said = [e for e in entries if e.outcome != "counted" or e.what]
            if not said:
                said = [TraceEntry(ref, "counted", "read, but no rule uses it for this decision")]
            codes = f" [{self.codes[ref]}]" if ref in self.codes else ""
            parts = "; ".join(f"{_VERB[e.outcome]}{e.what}" for e in said)
            out.append(f"{ref}{codes}: {parts}")
        if self.decision:
            out.append("decision: " + "; ".join(self.decision))
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "resources": [
                {
                    "ref": ref,
                    **({"codes": self.codes[ref]} if ref in self.codes else {}),
                    "matched": [e.what for e in entries if e.outcome == "matched"],
                    "setAside": [e.what for e in entries if e.outcome == "set-aside"],
                }
                for ref, entries in self.by_resource()
            ],
            "decision": list(self.decision),
            "lines": self.lines(),
        }


_VERB: Mapping[Outcome, str] = {"counted": "", "matched": "matched ", "set-aside": "set aside, "}


_BASIS: Mapping[str, str] = {"condition": "", "imaging-reason": " (a spine study ordered for it)"}


def _context_concepts(terminology: Terminology) -> frozenset[str]:
    """Value sets a trigger rule asks about (osteoporosis, a bone malignancy on record)."""
    found: set[str] = set()
    for valueset in terminology.valuesets.values():
        for rule in valueset.triggers:
            found.update(c for c in (rule.requires, rule.unless) if c)
    return frozenset(found)


def _day(when: date | None) -> str:
    return when.isoformat() if when else "undated"


def explain_decision(
    trace: Trace,
    record: PatientRecord,
    decision: ReferralDecision,
    terminology: Terminology,
    order: OrderDecision | None = None,
) -> None:
    """What each kept resource matched in the decision, then the decision itself."""
    params = terminology.parameters
    context = _context_concepts(terminology)
    for fracture in decision.fractures:
        level = fracture.level or "level unknown"
        for source in fracture.sources:
            via = _BASIS.get(source.basis, f" ({source.basis})")
            trace.matched(
                source.ref,
                f"trigger{via}: {fracture.etiology} fracture {level}, diagnosed "
                f"{_day(fracture.diagnosed_on)}, {fracture.age_days} days old "
                f"(recent: up to {decision.recent_days})",
            )
    for condition in record.conditions:
        for concept in sorted(condition.concepts & context):
            trace.matched(condition.ref, f"context: {concept} on record")
    for note in decision.contraindications:
        stale = " (undated)" if note.undated else ""
        for ref in note.evidence:
            trace.matched(ref, f"contraindication: {note.code} ({note.kind}){stale}")
    for condition in record.conditions:
        sets = condition.concepts
        if sets and not any(
            terminology.valuesets[s].triggers or terminology.valuesets[s].contraindication or s in context
            for s in sets
        ):
            trace.set_aside(condition.ref, "out-of-scope code", sets)
    if not decision.fractures:
        refs = [(c.ref, c.concepts) for c in record.conditions] + [(f.ref, f.concepts) for f in record.facts]
        for ref, concepts in refs:
            if terminology.contraindication_rules(concepts):
                trace.matched(ref, "contraindication code, not weighed: no recent fracture")
    relevant = {s.ref for s in decision.imaging.studies}
    acuity = {s.ref for s in decision.imaging.acuity_studies}
    for study in record.spine_studies:
        modalities = "/".join(sorted(study.modalities)) or "modality unknown"
        if study.ref in acuity:
            trace.matched(study.ref, f"imaging: spine {modalities} {_day(study.started)}, confirms acuity")
        elif study.ref in relevant:
            trace.matched(study.ref, f"imaging: spine {modalities} {_day(study.started)}, acuity not shown")
        elif not study.supports:
            trace.set_aside(study.ref, "spine imaging only scheduled: it never supports a fracture")
        elif decision.fractures:
            trace.set_aside(
                study.ref,
                f"spine imaging {_day(study.started)} outside the window "
                f"({params.imaging_lookback_days} days before a recent fracture to now)",
            )
        else:
            trace.set_aside(study.ref, f"spine imaging {_day(study.started)}: no recent fracture to support")
    _explain_augmentations(trace, record, decision, order is not None)
    trace.decision.extend(_decision_lines(decision, order))


def _explain_augmentations(
    trace: Trace, record: PatientRecord, decision: ReferralDecision, order_hook: bool
) -> None:
    if order_hook:
        for item in record.augmentations:
            trace.matched(item.ref, f"{item.kind} {_day(item.date)}: not weighed by the order hooks")
        return
    prior = {a.ref for a in decision.prior_augmentation}
    undated = {a.ref for a in decision.undated_augmentation}
    addressed = {a.ref: f for f, a in decision.addressed_fractures}
    for item in record.augmentations:
        if item.ref in prior:
            trace.matched(
                item.ref, f"suppression: {item.kind} {_day(item.date)}, on or after every recent fracture"
            )
        elif item.ref in addressed:
            level = addressed[item.ref].level or "level unknown"
            trace.matched(
                item.ref, f"suppression for the {level} fracture only ({item.kind} {_day(item.date)})"
            )
        elif item.ref in undated:
            trace.matched(item.ref, f"undated {item.kind}: never suppresses (said on the card)")
        elif decision.fractures:
            trace.set_aside(item.ref, f"{item.kind} {_day(item.date)} is before the recent fracture")
        else:
            trace.set_aside(item.ref, f"{item.kind} {_day(item.date)}: no recent fracture to suppress")


def _decision_lines(decision: ReferralDecision, order: OrderDecision | None) -> list[str]:
    lines: list[str] = []
    levels = ", ".join(f.level or "level unknown" for f in decision.fractures)
    found = (
        f"{len(decision.fractures)} recent fracture(s) ({levels})"
        if decision.fractures
        else ("no recent qualifying fracture")
    )
    if order is not None:
        outcome = order.recommendation or "no card"
        lines.append(f"{outcome}: {len(order.orders)} augmentation order(s); {found}")
    elif decision.recommendation is not None:
        lines.append(f"{decision.recommendation}: {found}")
    elif decision.deceased:
        lines.append(f"no card: the patient has died; {found}")
    elif decision.prior_augmentation:
        lines.append(f"no card: {found}, every one already treated or referred")
    else:
        lines.append(f"no card: {found}")
    if decision.fractures:
        acuity = "confirmed by imaging" if decision.imaging.acuity_confirmed else "not confirmed by imaging"
        lines.append(f"acuity {acuity}")
        notes = ", ".join(f"{c.code} ({c.kind})" for c in decision.contraindications) or "none"
        lines.append(f"contraindications: {notes}")
    if decision.unreadable:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(decision.unreadable.items()))
        lines.append(f"unreadable, said on the card: {counts}")
    if decision.unavailable:
        lines.append(f"not available, said on the card: {', '.join(sorted(decision.unavailable))}")
    return lines
