"""The request body decoded in one pass (envelope, prefetch Bundles and the reader's views together)
must read every record exactly as the careful path does (raw slices, each read leniently), and
anything the strict one-pass decode refuses must fall back to the careful path, never be lost."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import msgspec
import orjson
import pytest
from support.builders import SCENARIOS, condition, hook_body, searchset
from support.fixture_calls import fixture_call

from cds_service.config.settings import default_recent_days
from cds_service.core.decision import decide_referral
from cds_service.core.record import PatientRecord, read_record
from cds_service.core.record.fhir_json import ResourceView
from cds_service.core.terminology import load_terminology
from cds_service.hooks.catalogue import REFERRAL, ServiceDefinition
from cds_service.hooks.prefetch import TypedBundle, gather_record, read_hook_body
from cds_service.hooks.request import parse_hook_body, parse_hook_request
from cds_service.web.responses import CdsError

TERMINOLOGY = load_terminology()
AS_OF = date(2026, 11, 23)
RECENT_DAYS = default_recent_days()
FRACTURE = condition("fx", "M80.08XA", onsetDateTime="2026-11-01")


def _fast_path_taken(body: Any) -> bool:
    values = body.get("prefetch", {}).values()
    return any(isinstance(v, TypedBundle | ResourceView) for v in values)


def _record(body: Any, service: ServiceDefinition, as_of: date) -> PatientRecord | str:
    """The record the reader builds from a decoded body (or the 4xx it answers instead)."""
    try:
        request = parse_hook_request(body, service)
        data = gather_record(request, service.prefetch, None, time.monotonic() + 5)
    except CdsError as error:
        return f"{error.status} {error.issue_code}"
    return read_record(
        data.resources,
        TERMINOLOGY,
        as_of,
        patient_id=request.patient_id,
        unavailable=data.unavailable,
        recent_days=RECENT_DAYS,
    )


def test_every_fixture_reads_the_same_on_both_paths() -> None:
    taken = 0
    for folder in SCENARIOS:
        call = fixture_call(folder)
        raw = orjson.dumps(call.body)
        fast = read_hook_body(raw, call.service.prefetch)
        taken += _fast_path_taken(fast)
        careful = parse_hook_body(raw)
        assert not _fast_path_taken(careful)
        fast_record = _record(fast, call.service, call.as_of)
        careful_record = _record(careful, call.service, call.as_of)
        assert fast_record == careful_record, folder.name
        if isinstance(fast_record, PatientRecord) and call.service is REFERRAL:
            assert isinstance(careful_record, PatientRecord)
            assert decide_referral(fast_record, TERMINOLOGY, call.as_of, RECENT_DAYS) == decide_referral(
                careful_record, TERMINOLOGY, call.as_of, RECENT_DAYS
            ), folder.name
    # Most fixtures are well-formed JSON (their oddities are in values the views read as text).
    assert taken > len(SCENARIOS) // 2


def test_a_well_formed_body_is_decoded_in_one_pass() -> None:
    body = read_hook_body(orjson.dumps(hook_body([FRACTURE])), REFERRAL.prefetch)
    assert isinstance(body["prefetch"]["conditions"], TypedBundle)
    assert isinstance(body["prefetch"]["patient"], ResourceView)
    record = _record(body, REFERRAL, AS_OF)
    assert isinstance(record, PatientRecord)
    assert [c.ref for c in record.conditions] == ["Condition/fx"]


def _body(prefetch: Any = ..., **values: Any) -> dict[str, Any]:
    """A call with the fracture, some prefetch values replaced (or the whole prefetch)."""
    body = hook_body([FRACTURE])
    if prefetch is not ...:
        body["prefetch"] = prefetch
    body["prefetch"].update(values) if isinstance(body["prefetch"], dict) else None
    return body


PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"}
ODD_BODIES = {
    # A used element the strict decode refuses: the careful path reads the rest and counts it.
    "code of the wrong type": _body(conditions=searchset([FRACTURE, {**FRACTURE, "id": "bad", "code": 7}])),
    "a number for a date": _body(conditions=searchset([{**FRACTURE, "onsetDateTime": 20261101}])),
    "entry with a null resource": _body(conditions={"resourceType": "Bundle", "entry": [{"resource": None}]}),
    "entry that is not an object": _body(conditions={"resourceType": "Bundle", "entry": [FRACTURE, 3]}),
    "a read answered by a Bundle": _body(patient=searchset([PATIENT])),
    "a read answered by another type": _body(patient=FRACTURE),
    "an OperationOutcome for an optional key": _body(
        imaging={"resourceType": "OperationOutcome", "issue": []}
    ),
    "a search answered by one resource": _body(conditions=FRACTURE),
    "prefetch null": _body(prefetch=None),
    "a null key": _body(imaging=None),
}


@pytest.mark.parametrize("name", sorted(ODD_BODIES))
def test_odd_bodies_read_exactly_as_the_careful_path_reads_them(name: str) -> None:
    raw = orjson.dumps(ODD_BODIES[name])
    fast = read_hook_body(raw, REFERRAL.prefetch)
    assert _record(fast, REFERRAL, AS_OF) == _record(parse_hook_body(raw), REFERRAL, AS_OF)


def test_a_used_element_the_strict_decode_refuses_is_still_counted_unreadable() -> None:
    raw = orjson.dumps(ODD_BODIES["code of the wrong type"])
    body = read_hook_body(raw, REFERRAL.prefetch)
    assert isinstance(body["prefetch"]["conditions"], msgspec.Raw)  # the careful path
    record = _record(body, REFERRAL, AS_OF)
    assert isinstance(record, PatientRecord)
    assert record.unreadable["Condition"] == 1
    assert [c.ref for c in record.conditions] == ["Condition/fx"]


def test_a_null_key_reads_as_an_empty_answer_and_a_required_outcome_as_missing() -> None:
    raw = orjson.dumps(_body(imaging=None))
    record = _record(read_hook_body(raw, REFERRAL.prefetch), REFERRAL, AS_OF)
    assert isinstance(record, PatientRecord)
    assert "ImagingStudy" not in record.unavailable
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    raw = orjson.dumps(_body(conditions=outcome))
    # Required, not prefetched and no FHIR server to fetch from: the call is refused, as before.
    assert _record(read_hook_body(raw, REFERRAL.prefetch), REFERRAL, AS_OF) == "412 incomplete"
