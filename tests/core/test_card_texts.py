"""Issue 15's card data: override reasons per kind of card, final note wording, a routable referral,
and details that read cleanly both as Markdown and as plain text (record text never injects markup)."""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.builders import ROOT, SCENARIOS
from support.fixture_calls import answer

from cds_service.core.card_builder import load_card_content, md_escape
from cds_service.demo.scenario import read_scenario
from cds_service.web.html import render_markdown

FINDING = "vertebral-augmentation-cds/finding"
SCT = "http://snomed.info/sct"
TEXTS = load_card_content().texts


@cache
def _cards(folder: Path) -> list[dict[str, Any]]:
    """The cards the service answers for one fixture, at its as-of date, through the HTTP API."""
    cards: list[dict[str, Any]] = answer(folder)[1]["cards"]
    return cards


def _all_cards() -> list[tuple[str, dict[str, Any]]]:
    return [(folder.name, card) for folder in SCENARIOS for card in _cards(folder)]


def _referral_requests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, action["resource"])
        for name, card in _all_cards()
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if action.get("resource", {}).get("resourceType") == "ServiceRequest"
    ]


# ---- override reasons -------------------------------------------------------------------------------


def test_every_card_offers_the_override_reasons_of_its_kind() -> None:
    kinds = set()
    for folder in SCENARIOS:
        for card in _cards(folder):
            name = folder.name
            recommendation = card["extension"][FINDING]["recommendation"]
            order_hook = read_scenario(folder).hook != "patient-view"
            group = (
                f"order-{recommendation}"
                if order_hook and recommendation == "contraindicated"
                else recommendation
            )
            expected = [r["code"] for r in TEXTS["override_reasons"][group]]
            assert [r["code"] for r in card["overrideReasons"]] == expected, name
            kinds.add(group)
    assert {
        "refer",
        "contraindicated",
        "order-not-supported",
        "order-contraindicated",
        "order-caution",
    } <= kinds


def test_a_contraindicated_card_offers_no_reason_that_presumes_a_referral() -> None:
    seen = 0
    for name, card in _all_cards():
        if card["extension"][FINDING]["recommendation"] != "contraindicated":
            continue
        seen += 1
        assert "suggestions" not in card or all(
            a.get("resource", {}).get("resourceType") != "ServiceRequest"
            for s in card["suggestions"]
            for a in s["actions"]
        ), name
        for reason in card["overrideReasons"]:
            assert not re.search(r"referr|declines", reason["display"], re.IGNORECASE), (name, reason)
    assert seen >= 4
    codes = {r["code"] for r in TEXTS["override_reasons"]["contraindicated"]}
    assert {"contraindication-resolved", "contraindication-incorrect"} <= codes


def test_evaluate_reasons_exist_for_an_unqualified_fracture_on_imaging() -> None:
    displays = [r["display"] for r in TEXTS["override_reasons"]["evaluate"]]
    assert "Already on problem list" in displays
    assert "Known chronic fracture" in displays
    assert not any(re.search(r"referr", d, re.IGNORECASE) for d in displays)


def test_override_reason_codes_are_unique_within_each_kind() -> None:
    for group, reasons in TEXTS["override_reasons"].items():
        codes = [r["code"] for r in reasons]
        assert len(codes) == len(set(codes)), group
        assert all(r["display"] for r in reasons), group


# ---- notes ------------------------------------------------------------------------------------------


def test_every_note_is_final_wording_with_a_source() -> None:
    for code, note in TEXTS["notes"].items():
        for field in ("title", "action"):
            assert "?" not in note[field], (code, field)
        assert note["action"].endswith("."), code
        assert re.search(r"clinical-rules\.md §\d", note["source"]), code
        assert re.search(r"L38201|L34228|patient guide", note["source"]), code
    assert {"malignancy-on-record", "imaging-chronic", "imaging-discordant"} <= set(TEXTS["notes"])


def test_neurologic_compromise_note_is_an_instruction() -> None:
    action = TEXTS["notes"]["neurologic-compromise"]["action"]
    assert action.startswith("Arrange urgent spine surgery assessment before augmentation")
    assert "retropulsion" in action


def test_unreadable_line_and_preliminary_phrase() -> None:
    unreadable = TEXTS["unreadable"]
    assert unreadable["one"].format(types="Condition") == (
        "1 record entry could not be read (Condition); checks may be incomplete."
    )
    assert unreadable["many"].format(count=3, types="Condition, AllergyIntolerance") == (
        "3 record entries could not be read (Condition, AllergyIntolerance); checks may be incomplete."
    )
    assert TEXTS["reports"]["preliminary"] == "preliminary report"


# ---- the referral ---------------------------------------------------------------------------------


def test_every_drafted_referral_validates_against_r4b_and_is_routable() -> None:
    requests = _referral_requests()
    assert len(requests) >= 20
    own = TEXTS["suggestion"]["code"]
    for name, resource in requests:
        parsed = ServiceRequest.model_validate(resource)
        assert parsed.intent == "proposal", name
        codings = [(c["system"], c["code"]) for c in resource["code"]["coding"]]
        assert codings[0] == (SCT, "308461008"), name  # Referral to radiology service (procedure)
        assert (own["system"], own["code"]) in codings, name  # our own coding stays beside it
        assert resource["category"][0]["coding"][0]["code"] == "3457005"
        performer = resource["performerType"]
        assert performer["coding"][0]["system"] == SCT
        assert performer["coding"][0]["code"] in {"66862007", "45544007"}, name


def test_referral_performer_is_spine_surgery_when_neurologic_compromise_comes_first() -> None:
    by_name = dict(_referral_requests())
    assert by_name["62-cord-compression"]["performerType"]["coding"][0]["code"] == "45544007"
    assert by_name["01-osteoporotic-l1-mri"]["performerType"]["coding"][0]["code"] == "66862007"


def test_every_code_in_the_suggestion_cites_where_it_was_verified() -> None:
    source = (ROOT / "cards" / "texts.toml").read_text(encoding="utf-8")
    for code in ("308461008", "66862007", "45544007"):
        comment = [line for line in source.splitlines() if line.startswith("#") and code in line]
        assert comment, f"{code} has no 'Verified:' comment"
    assert source.count("Verified:") >= 2


# ---- Markdown and plain text ------------------------------------------------------------------------

_STRAY = re.compile(r"\\(?=[0-9A-Za-z()])")


def _plain(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_detail_reads_cleanly_as_markdown_and_as_plain_text(folder: Path) -> None:
    for card in _cards(folder):
        detail = card["detail"]
        assert not _STRAY.search(detail), detail  # plain text: no "vertebra\(e\)"
        rendered = render_markdown(detail)
        text = _plain(rendered)
        assert "\\" not in text, text
        assert "**" not in text
        assert "<script" not in rendered
        assert "<strong>" in rendered  # it is Markdown, and it renders
    if any("vertebra(e)" in c["detail"] for c in _cards(folder)):
        assert all("vertebra\\(e\\)" not in c["detail"] for c in _cards(folder))


def test_some_fixture_detail_keeps_vertebra_e_as_written() -> None:
    assert any("vertebra(e)" in card["detail"] for _, card in _all_cards())


def _inert(text: str) -> str:
    """What one line of text looks like when rendered as a plain paragraph."""
    line = re.sub(r"\s+", " ", text).strip()
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        line = line.replace(raw, entity)
    return f"<p>{line}</p>\n"


@pytest.mark.parametrize(
    "hostile",
    [
        "[click here](javascript:alert(1))",
        "[ok](https://evil.example/phish)",
        "![x](https://evil.example/pixel.png)",
        "<https://evil.example>",
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "**urgent** __now__ *a* _b_",
        "# Heading",
        "## Another",
        "> quoted",
        "- item",
        "+ item",
        "1. first",
        "3) third",
        "`code` and ``more``",
        "~~struck~~",
        "&lt;b&gt; &#60;script&#62;",
        "back\\slash \\*not\\*",
        "---",
        "===",
        "| a | b |",
    ],
)
def test_hostile_record_text_cannot_inject_markup(hostile: str) -> None:
    rendered = render_markdown(md_escape(hostile))
    assert rendered == _inert(hostile)
    for tag in (
        "<a",
        "<img",
        "<em",
        "<strong",
        "<h1",
        "<h2",
        "<blockquote",
        "<ul",
        "<ol",
        "<code",
        "<s>",
        "<hr",
    ):
        assert tag not in rendered


def test_hostile_text_inside_a_card_template_stays_text() -> None:
    """Escaped record text inside the italic evidence parentheses, as the referral template puts it."""
    hostile = "*x* [y](javascript:z) <b>_w_</b> vertebra(e)"
    rendered = render_markdown(f"- **Note.** Do this. _({md_escape(hostile)})_\n")
    assert "<em>(" + _inert(hostile)[3:-5] + ")</em>" in rendered
    assert "<a" not in rendered
    assert "<b>" not in rendered


_PIECES = st.sampled_from(
    [*"ab1 _*`[]()<>!#&;~|\\-+=.:/\"'{}é\t\n", "http://x.y", "&amp;", "&#65;", "javascript:", "1. ", "- "]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=24).map("".join))
def test_any_record_text_renders_as_exactly_itself(text: str) -> None:
    if text.strip():
        assert render_markdown(md_escape(text)) == _inert(text)
