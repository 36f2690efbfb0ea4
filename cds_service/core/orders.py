"""Order hooks: which draft orders are vertebral augmentation, and what the record says of them.

The decision is the same ReferralDecision patient-view uses (one copy of the rules); only the
reading differs: the prior-procedure and existing-referral suppressions do not apply here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cds_service.core.decision import ReferralDecision
from cds_service.core.record import listed
from cds_service.core.terminology import Terminology

OrderRecommendation = Literal["order-not-supported", "contraindicated", "order-caution"]
ORDER_TYPES = ("ServiceRequest", "Procedure")


@dataclass(frozen=True)
class AugmentationOrder:
    ref: str
    label: str


def augmentation_orders(
    orders: Iterable[Mapping[str, Any]], terminology: Terminology
) -> list[AugmentationOrder]:
    """Draft ServiceRequests / Procedures for vertebroplasty or kyphoplasty (codes or text).

    A referral for evaluation (this service's own suggestion) is not an order for the procedure.
    """
    found: list[AugmentationOrder] = []
    for order in orders:
        resource_type = order.get("resourceType")
        if resource_type not in ORDER_TYPES:
            continue
        code = order.get("code")
        if not isinstance(code, Mapping):
            continue
        meaning = terminology.meaning_of_codings(code.get("coding"))
        concepts = set(meaning.concepts) if meaning else set()
        texts = [code["text"]] if isinstance(code.get("text"), str) else []
        texts += [
            c["display"]
            for c in listed(code.get("coding"))
            if isinstance(c, Mapping) and isinstance(c.get("display"), str)
        ]
        concepts |= terminology.text_concepts(str(resource_type), texts)
        if "augmentation-procedure" in concepts and "augmentation-referral" not in concepts:
            rid = order.get("id")
            ref = f"{resource_type}/{rid}" if isinstance(rid, str) and rid else str(resource_type)
            found.append(AugmentationOrder(ref, texts[0] if texts else "vertebral augmentation order"))
    return found


def order_recommendation(decision: ReferralDecision) -> OrderRecommendation | None:
    """Precedence, one card per call: no recent fracture, then absolute, then relative / not-advised."""
    if not decision.fractures:
        return "order-not-supported"
    if decision.absolute:
        return "contraindicated"
    if decision.contraindications:
        return "order-caution"
    return None
