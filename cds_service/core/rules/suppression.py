"""§3 What suppresses the referral card: an augmentation done or referred on or after every
recent fracture. Undated ones never suppress; the card mentions them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cds_service.core.record import AugmentationRecord
from cds_service.core.rules.fractures import Fracture


@dataclass(frozen=True)
class Suppression:
    prior: tuple[AugmentationRecord, ...]
    """Dated on or after every recent fracture: patient-view says nothing."""
    addressed: tuple[tuple[Fracture, AugmentationRecord], ...]
    """Some fractures already treated or referred while another is not: said on the card."""
    undated: tuple[AugmentationRecord, ...]


def find_suppression(
    fractures: Sequence[Fracture], augmentations: Sequence[AugmentationRecord]
) -> Suppression:
    dated = [a for a in augmentations if a.date is not None]
    addressed = [[a for a in dated if a.date is not None and a.date >= f.diagnosed_on] for f in fractures]
    prior = (
        tuple({a.ref: a for found in addressed for a in found}.values())
        if fractures and all(addressed)
        else ()
    )
    partly = (
        () if prior else tuple((f, found[0]) for f, found in zip(fractures, addressed, strict=True) if found)
    )
    return Suppression(prior, partly, tuple(a for a in augmentations if a.date is None))
