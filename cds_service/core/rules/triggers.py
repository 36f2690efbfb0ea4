"""§2 What triggers: the etiology a fracture code gives, under its conditions (osteoporosis or a
bone malignancy on record, spine corroboration by body site or by spine imaging)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from cds_service.core.record import PatientRecord
from cds_service.core.terminology import CodeMeaning, Etiology, TriggerRule


def fracture_etiology(
    rules: Sequence[TriggerRule],
    record: PatientRecord,
    body_site: CodeMeaning | None,
    *,
    self_corroborated: bool,
    spine_imaging_near: bool,
    missed: list[str] | None = None,
) -> Etiology | None:
    """The etiology the qualifying rules give (pathologic wins over osteoporotic), or None.

    `missed` (explain only) gets why each rule that did not apply did not."""
    found: set[Etiology] = set()
    for rule in rules:
        if rule.requires and not record.has_concept(rule.requires):
            if missed is not None:
                missed.append(f"{rule.etiology} needs {rule.requires} on record")
            continue
        if rule.unless and record.has_concept(rule.unless):
            if missed is not None:
                missed.append(f"{rule.etiology} not with {rule.unless} on record")
            continue
        corroborated = (
            self_corroborated or spine_imaging_near or _site_corroborates(body_site, rule.corroboration)
        )
        if rule.corroboration and not corroborated:
            if missed is not None:
                missed.append(
                    f"{rule.etiology} needs a {rule.corroboration} body site or spine imaging near it"
                )
            continue
        found.add(rule.etiology)
    if not found:
        return None
    return "pathologic" if "pathologic" in found else "osteoporotic"


def _site_corroborates(
    body_site: CodeMeaning | None, corroboration: Literal["spine", "thoracolumbar"] | None
) -> bool:
    if body_site is None or corroboration is None:
        return False
    return body_site.is_spine if corroboration == "spine" else body_site.is_thoracolumbar
