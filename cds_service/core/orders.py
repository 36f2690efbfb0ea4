"""Order hooks: which draft orders are vertebral augmentation (api-contract.md, order hooks)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cds_service.core.record.fhir_json import ViewDecoder, concept_texts
from cds_service.core.record.procedure import ProcedureView, ServiceRequestView
from cds_service.core.terminology import Terminology

_ORDER_DECODERS = {
    "ServiceRequest": ViewDecoder(ServiceRequestView),
    "Procedure": ViewDecoder(ProcedureView),
}


@dataclass(frozen=True)
class AugmentationOrder:
    ref: str
    label: str


def augmentation_orders(orders: Iterable[object], terminology: Terminology) -> list[AugmentationOrder]:
    """Draft ServiceRequests / Procedures for vertebroplasty or kyphoplasty (codes or text).

    A referral for evaluation (this service's own suggestion) is not an order for the procedure.
    Orders whose code cannot be read are not augmentation orders: nothing to check.
    """
    found: list[AugmentationOrder] = []
    for order in orders:
        resource_type = order.get("resourceType") if isinstance(order, dict) else None
        decoder = _ORDER_DECODERS.get(resource_type) if isinstance(resource_type, str) else None
        decoded = decoder.decode(order, resource_type) if decoder and resource_type else None
        if decoded is None or decoded.view.code is None or "code" in decoded.bad:
            continue
        view = decoded.view
        meaning = terminology.meaning_of_concept(view.code)
        concepts = set(meaning.concepts) if meaning else set()
        texts = concept_texts([view.code])
        concepts |= terminology.text_concepts(view.resource_type, texts)
        if "augmentation-procedure" in concepts and "augmentation-referral" not in concepts:
            ref = f"{view.resource_type}/{view.id}" if view.id else view.resource_type
            found.append(AugmentationOrder(ref, texts[0] if texts else "vertebral augmentation order"))
    return found
