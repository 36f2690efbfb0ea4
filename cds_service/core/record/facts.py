"""Medicines in use and allergies: facts a contraindication rule names (§5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ClinicalFact:
    """A medication in use or an allergy that a contraindication rule names."""

    ref: str
    label: str
    concepts: frozenset[str]
    date: date | None
