"""core/record/fhir_json: patient membership has one rule, for typed views (the reader) and for
JSON resources (the demo and the CLI splitting files by patient)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from cds_service.core.record.fhir_json import ResourceView, belongs_to, json_belongs_to

CASES: list[tuple[dict[str, Any], bool]] = [
    ({"resourceType": "Condition", "subject": {"reference": "Patient/p1"}}, True),
    ({"resourceType": "Condition", "subject": {"reference": "https://ehr/fhir/Patient/p1/_history/2"}}, True),
    ({"resourceType": "Condition", "subject": {"reference": "Patient/p2"}}, False),
    ({"resourceType": "Condition", "subject": {"reference": "urn:uuid:1234"}}, True),
    ({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p2"}}, False),
    ({"resourceType": "Condition"}, True),
    ({"resourceType": "Condition", "subject": {"display": "someone"}}, True),
    ({"resourceType": "Patient", "id": "p1"}, True),
    ({"resourceType": "Patient", "id": "p2"}, False),
]


@pytest.mark.parametrize(("resource", "mine"), CASES)
def test_the_reader_and_the_json_rule_agree(resource: dict[str, Any], mine: bool) -> None:
    view = msgspec.convert(resource, ResourceView)
    assert belongs_to(view, "p1") is mine
    assert json_belongs_to(resource, "p1") is mine
