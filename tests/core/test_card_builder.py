"""Card shape per api-contract.md, and card text safety."""

from __future__ import annotations

import re
import uuid

from markdown_it import MarkdownIt
from support.builders import AS_OF, REFERRAL_URL, SCT, Call, condition, finding, hook_body, study
from support.cds_validator import check_response

from cds_service.app import create_app
from cds_service.config.settings import default_recent_days
from cds_service.core.card_builder import load_card_content

FRACTURE = condition("fx", "M80.08XA", bodySite=[{"text": "L1"}])


def test_card_has_every_contract_field(call: Call) -> None:
    answer = call([FRACTURE], [study("mr")])
    check_response(answer)
    card = answer["cards"][0]
    assert uuid.UUID(card["uuid"]).version == 4
    assert len(card["summary"]) < 140
    assert card["indicator"] in {"info", "warning", "critical"}
    assert card["detail"]
    assert card["source"]["label"]
    assert card["source"]["url"].endswith("/rationale")
    assert card["source"]["topic"]["code"]
    assert card["overrideReasons"]
    assert all(r["display"] and r["code"] and r["system"] for r in card["overrideReasons"])
    assert card["selectionBehavior"] == "at-most-one"
    (suggestion,) = card["suggestions"]
    assert uuid.UUID(suggestion["uuid"]).version == 4
    assert suggestion["isRecommended"] is True
    assert suggestion["label"]
    (action,) = suggestion["actions"]
    assert action["type"] == "create"
    resource = action["resource"]
    assert resource["resourceType"] == "ServiceRequest"
    assert (resource["status"], resource["intent"]) == ("draft", "proposal")
    assert "kyphoplasty" in resource["code"]["text"]
    assert "vertebroplasty" in resource["code"]["text"]
    assert resource["reasonReference"] == [{"reference": "Condition/fx"}]
    assert resource["requester"] == {"reference": "Practitioner/dr1"}


def test_uuids_are_new_per_card(call: Call) -> None:
    first = call([FRACTURE])["cards"][0]
    second = call([FRACTURE])["cards"][0]
    assert first["uuid"] != second["uuid"]
    assert first["suggestions"][0]["uuid"] != second["suggestions"][0]["uuid"]


def test_requester_only_for_practitioners(call: Call) -> None:
    body_context = {"userId": "Patient/p1", "patientId": "p1"}
    card = call([FRACTURE], context=body_context)["cards"][0]
    assert "requester" not in card["suggestions"][0]["actions"][0]["resource"]
    card = call([FRACTURE], context={"userId": "PractitionerRole/r9", "patientId": "p1"})["cards"][0]
    assert card["suggestions"][0]["actions"][0]["resource"]["requester"] == {
        "reference": "PractitionerRole/r9"
    }


def test_finding_extension_shape(call: Call) -> None:
    found = finding(call([FRACTURE], [study("mr")]))
    assert found == {
        "recommendation": "refer",
        "fractures": [
            {
                "etiology": "osteoporotic",
                "basis": "condition",
                "level": "L1",
                "region": "lumbar",
                "diagnosedOn": "2026-11-01",
                "ageDays": 22,
                "evidence": ["Condition/fx", "ImagingStudy/mr"],
            }
        ],
        "imaging": {"acuityConfirmed": True, "studies": ["ImagingStudy/mr"]},
        "asOf": "2026-11-23",
    }  # no contraindications, nothing unavailable: those members are omitted, never empty


def test_finding_omits_members_with_no_value(call: Call) -> None:
    """CDS Hooks use of JSON: a level-less fracture has no `level` (not null), no study no `studies`."""
    answer = call([condition("fx", "M80.08XA")], patient={"resourceType": "OperationOutcome", "issue": []})
    check_response(answer)
    found = finding(answer)
    (fracture,) = found["fractures"]
    assert "level" not in fracture
    assert "region" not in fracture
    assert found["imaging"] == {"acuityConfirmed": False}
    assert "contraindications" not in found
    assert found["dataUnavailable"] == ["Patient"]


def test_detail_states_what_when_imaging_timing_checklist_and_both_procedures(call: Call) -> None:
    detail = call([FRACTURE], [study("mr")])["cards"][0]["detail"]
    window = default_recent_days()
    timing = f"Benefit is greatest early: within {window} days of the fracture ({window - 22} days left)."
    for needle in ("L1", "2026-11-01", "22 days ago", "MRI lumbar spine", timing, "CBC", "coagulation"):
        assert needle in detail
    assert "Kyphoplasty" in detail
    assert "vertebroplasty" in detail


def test_record_text_cannot_inject_markdown_or_html(call: Call) -> None:
    evil = condition("fx", "M80.08XA")
    evil["code"]["text"] = "[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n# Heading"
    detail = call([evil])["cards"][0]["detail"]
    # Rendered as an EHR would, with raw HTML allowed: the record's text stays text.
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(detail)
    assert "<img" not in html
    assert "<a " not in html
    assert "<h1>" not in html


def test_summary_stays_under_140_characters_for_many_fractures(call: Call) -> None:
    levels = ["T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    fractures = [condition(f"fx{lvl}", "M80.08XA", bodySite=[{"text": lvl}]) for lvl in levels]
    fractures.append(condition("ci", "A41.9"))
    fractures.append(condition("ci2", "Z34.00"))
    card = call(fractures)["cards"][0]
    assert len(card["summary"]) < 140


def test_pathologic_summary(call: Call) -> None:
    card = call([condition("fx", "M84.58XA")])["cards"][0]
    assert card["summary"].startswith("Recent pathologic vertebral fracture")


def test_snomed_thoracic_region_in_summary(call: Call) -> None:
    card = call([condition("fx", "203451004", SCT)])["cards"][0]
    assert "thoracic" in card["summary"]


def test_card_states_the_configured_window_never_the_default() -> None:
    """CDS_RECENT_DAYS=10: the card says 10 days wherever it states the window (clinical-rules.md §8)."""
    client = create_app(clock=lambda: AS_OF, auth="off", recent_days=10).test_client()
    fracture = condition("fx", "M80.08XA", onset="2026-11-20", bodySite=[{"text": "L1"}])
    refer = client.post(REFERRAL_URL, json=hook_body([fracture], [study("mr")])).get_json()["cards"][0]
    assert "within 10 days of the fracture (7 days left)" in refer["detail"]
    old = condition("old", "M80.08XA", onset="2026-11-01", bodySite=[{"text": "L1"}])
    assert client.post(REFERRAL_URL, json=hook_body([old])).get_json()["cards"] == []  # 22 days: not recent
    text = refer["summary"] + "\n" + refer["detail"]
    assert "two months" not in text
    assert not re.search(r"\b60\b", text), text


def test_contraindicated_card_opens_with_each_absolute_and_its_latest_date(call: Call) -> None:
    texts = load_card_content().texts
    records = [
        FRACTURE,
        condition("s1", "A41.9", onset="2026-11-01"),
        condition("s2", "A41.9", onset="2026-11-10"),
        condition("p", "Z34.00", onset="2026-10-01"),
        condition("r", "D68.9"),
    ]
    detail = call(records, [study("mr")])["cards"][0]["detail"]
    first, rest = detail.split("\n", 1)
    infection, pregnancy = texts["notes"]["infection"]["title"], texts["notes"]["pregnancy"]["title"]
    assert (
        first
        == f"**Contraindicated: {infection}**: A41.9 (2026-11-10). **{pregnancy}**: Z34.00 (2026-10-01)."
    )
    assert (
        rest.index("L1")
        < rest.index("**Also on record:**")
        < rest.index(texts["notes"]["coagulopathy"]["title"])
    )
    for absent in (
        "Timing",
        "days left",
        "Before the procedure",
        "CBC",
        "proceduralist chooses",
        "**Notes:**",
    ):
        assert absent not in detail
