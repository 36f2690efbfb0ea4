"""What every per-type reader shares for one evaluation: the day, the value sets, the Patient's
birth date (read only when a date is an age), and the counters of what was set aside."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from cds_service.core.explain import Trace
from cds_service.core.record.fhir_json import (
    CodeableConcept,
    Coding,
    ResourceView,
    concept_label,
    concept_texts,
)
from cds_service.core.terminology import LEVELS, CodeMeaning, Terminology

_LEVEL_TEXT = re.compile(r"\b(T|Th|L)\s?-?(\d{1,2})\b", re.IGNORECASE)


_TEXT_CACHE_LIMIT = 20_000
_TEXT_CACHE_LONGEST = 200
"""Texts remembered across calls: at most this many, of at most this many characters (a few MB)."""


class UnreadableError(Exception):
    """A resource that matters but whose needed element cannot be read (§1a)."""


def level_from_text(text: str) -> str | None:
    for match in _LEVEL_TEXT.finditer(text):
        prefix = "T" if match.group(1).upper().startswith("T") else "L"
        level = f"{prefix}{int(match.group(2))}"
        if level in LEVELS:
            return level
    return None


class Reading:
    """One evaluation's reading context (no clock: `today` is given)."""

    def __init__(
        self,
        terminology: Terminology,
        today: date,
        birth_date: Callable[[], date | None],
        recent_days: int | None = None,
        trace: Trace | None = None,
    ) -> None:
        self.terminology = terminology
        self.trace = trace
        self.today = today
        params = terminology.parameters
        self.oldest_relevant = (
            today - timedelta(days=recent_days + params.imaging_lookback_days)
            if recent_days is not None
            else None
        )
        """Evidence dated before this cannot be recent, nor describe a recent fracture."""
        self.birth_date = birth_date
        self.latest_allowed = today + timedelta(days=terminology.parameters.future_tolerance_days)
        self.skipped: Counter[str] = Counter()
        # Real records repeat themselves (one diagnosis per visit): the same body site or status
        # is worked out once per call.
        self._sites: dict[tuple[object, ...], CodeMeaning | None] = {}
        self._texts = terminology.text_meanings  # shared by every call: a pure function of the text

    def aside(self, view: ResourceView, reason: str, detail: object = None) -> None:
        """A reader's `return None` (the resource does not count), said to the trace when there is one."""
        if self.trace is not None:
            self.trace.note_codes(view.ref, getattr(view, "code", None))
            self.trace.set_aside(view.ref, reason, detail)

    def plausible(self, when: date | None, resource_type: str) -> bool:
        """False (and counted) for a date more than the tolerated day ahead: a data error."""
        if when is not None and when > self.latest_allowed:
            self.skipped[f"{resource_type} future-dated"] += 1
            return False
        return True

    def text_meaning(self, texts: Iterable[str], with_level: bool = True) -> CodeMeaning | None:
        """Spine-ness, level and region read from free text (bodySite text, displays).

        Study descriptions name MRI sequences ("T1", "T2"), so callers reading them pass
        with_level=False.
        """
        joined = " ".join(t for t in texts if t)
        if not joined:
            return None
        key = (joined, with_level)
        if key in self._texts:
            return self._texts[key]
        found = self._text_meaning(joined, with_level)
        if len(self._texts) < _TEXT_CACHE_LIMIT and len(joined) <= _TEXT_CACHE_LONGEST:
            self._texts[key] = found
        return found

    def _text_meaning(self, joined: str, with_level: bool) -> CodeMeaning | None:
        terminology = self.terminology
        level = level_from_text(joined) if with_level else None
        if not terminology.text_matches("spine-body-site", joined):
            return CodeMeaning(frozenset({"spine-body-site"}), level) if level else None
        lowered = joined.lower()
        region = next((name for word, name in terminology.region_words if word in lowered), None)
        return CodeMeaning(frozenset({"spine-body-site"}), level, region)

    def coding_meaning(self, coding: Coding | None) -> CodeMeaning | None:
        """A single Coding's meaning, its display read as text too (series.bodySite)."""
        if coding is None:
            return None
        found = self.terminology.meaning(coding.system, coding.code)
        from_text = self.text_meaning([coding.display]) if coding.display else None
        if found is None:
            return from_text
        return found.merge(from_text)

    def trigger_codings(
        self, concepts: Iterable[CodeableConcept]
    ) -> tuple[CodeMeaning | None, tuple[Coding, ...]]:
        """The fracture-trigger codings among some concepts (a study's reason, a report's coded
        conclusion) and their merged meaning."""
        terminology = self.terminology
        merged: CodeMeaning | None = None
        codings: list[Coding] = []
        for concept in concepts:
            for coding in concept.coding:
                found = terminology.meaning(coding.system, coding.code)
                if found is not None and terminology.triggers(found.concepts):
                    merged = found.merge(merged)
                    codings.append(coding)
        return merged, tuple(codings)

    def body_site(self, sites: Iterable[CodeableConcept]) -> CodeMeaning | None:
        listed = list(sites)
        if not listed:
            return None
        key = tuple((s.text, *((c.system, c.code, c.display) for c in s.coding)) for s in listed)
        if key in self._sites:
            return self._sites[key]
        found = self._body_site(listed)
        if len(self._sites) < 4096:
            self._sites[key] = found
        return found

    def _body_site(self, listed: list[CodeableConcept]) -> CodeMeaning | None:
        merged: CodeMeaning | None = None
        for site in listed:
            found = self.terminology.meaning_of_concept(site)
            merged = found.merge(merged) if found else merged
        from_text = self.text_meaning(concept_texts(listed))
        return merged.merge(from_text) if merged else from_text

    def concepts(
        self, resource_type: str, concepts: Iterable[CodeableConcept | None]
    ) -> tuple[frozenset[str], str | None]:
        """Value-set concepts named by codings or text of some CodeableConcepts, and a label."""
        found: set[str] = set()
        label: str | None = None
        for concept in concepts:
            if concept is None:
                continue
            meaning = self.terminology.meaning_of_concept(concept)
            named = self.terminology.text_concepts(resource_type, concept_texts([concept]))
            if meaning is not None or named:
                found.update(named)
                found.update(meaning.concepts if meaning else ())
                label = label or concept_label(concept, resource_type)
        return frozenset(found), label
