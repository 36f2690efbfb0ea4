"""Every fixture's card against the layout of its recommendation (clinical-rules.md §8, issue 15).

refer: fracture, imaging, timing, checklist, notes, procedure choice. contraindicated (patient-view
and the order hooks): the first line names each absolute contraindication with its record entries and
their dates, then the fracture; no timing, checklist or choice. order-not-supported: the order and
why (the old fracture's age when there is one). order-caution: the order, the fracture, the notes.
Expectations come from the fixture's own resources and the card texts, not from the card builder.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from support.builders import SCENARIOS, with_defaults
from support.fixture_calls import answer

from cds_service.config.settings import default_recent_days
from cds_service.core.card_builder import load_card_content

FINDING = "vertebral-augmentation-cds/finding"
TEXTS = load_card_content().texts
TIMING_START = TEXTS["timing"]["text"].split("{", 1)[0]  # "Benefit is greatest early: within "
CHECKLIST = TEXTS["checklist"]["text"]
CHOICE = TEXTS["choice"]["text"]


@cache
def _answer(folder: Path, recent_days: int) -> tuple[str, tuple[dict[str, Any], ...], dict[str, Any]]:
    """(hook, cards, resources by reference) for one fixture at its as-of date, through the HTTP API."""
    fixture, found = answer(folder, recent_days=recent_days)
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in fixture.scenario.resources if "id" in r}
    return fixture.scenario.hook, tuple(found["cards"]), by_ref


def _orders(detail_line: str) -> str:
    return detail_line.split(":**", 1)[1].strip()


def _entry_date(resource: dict[str, Any]) -> str:
    """The date a reader would give this record entry: onset, else recorded; else undated."""
    for key in ("onsetDateTime", "recordedDate"):
        if isinstance(resource.get(key), str):
            return str(resource[key])[:10]
    return TEXTS["contraindicated"]["undated"]


def _no_referral_advice(detail: str, name: str) -> None:
    assert TIMING_START not in detail, name
    assert "days left" not in detail, name
    assert "Before the procedure" not in detail, name
    assert CHECKLIST not in detail, name
    assert CHOICE not in detail, name
    assert "proceduralist chooses" not in detail, name


def _check_contraindicated(
    name: str, hook: str, card: dict[str, Any], by_ref: dict[str, Any], recent_days: int
) -> None:
    found = with_defaults(card["extension"][FINDING])
    detail = card["detail"]
    first, _, rest = detail.partition("\n")
    assert first.startswith(f"**{TEXTS['contraindicated']['lead']}: "), name
    absolutes = [c for c in found["contraindications"] if c["kind"] == "absolute"]
    assert absolutes, name
    for c in absolutes:
        assert TEXTS["notes"][c["code"]]["title"] in first, (name, c["code"])
        for ref in c["evidence"]:
            resource = by_ref[ref]
            label = resource["code"]["text"]
            assert f"{label} ({_entry_date(resource)})" in first, (name, ref, first)
    for f in found["fractures"]:
        assert (f.get("level") or f.get("region") or "level unknown") in rest, name
        assert f["diagnosedOn"] in rest, name
    others = [c for c in found["contraindications"] if c["kind"] != "absolute"]
    if others:
        also = rest.split(f"**{TEXTS['contraindicated']['others']}:**", 1)[1]
        for c in others:
            assert TEXTS["notes"][c["code"]]["title"] in also, (name, c["code"])
    assert "**Notes:**" not in detail, name
    _no_referral_advice(detail, name)
    if hook == "patient-view":
        assert TEXTS["contraindicated"]["text"] in rest, name
    else:
        assert TEXTS["order"]["text"]["contraindicated"] in rest, name
        assert "\n**Order:** " in rest, name


def _check_refer(name: str, card: dict[str, Any], recent_days: int) -> None:
    found = with_defaults(card["extension"][FINDING])
    detail = card["detail"]
    assert detail.startswith("- **"), name  # the fracture comes first
    youngest = min(f["ageDays"] for f in found["fractures"])
    timing = TEXTS["timing"]["text"].format(recent_days=recent_days, days_left=max(0, recent_days - youngest))
    sections = ["**Imaging:** ", f"**Timing:** {timing}", f"**Before the procedure:** {CHECKLIST}"]
    if found["contraindications"]:
        sections.append("**Notes:**")
    sections.append(CHOICE)
    positions = [detail.find(s) for s in sections]
    assert all(p > 0 for p in positions), (name, sections, detail)
    assert positions == sorted(positions), name
    notes = detail[detail.find("**Notes:**") :] if found["contraindications"] else ""
    for c in found["contraindications"]:
        assert TEXTS["notes"][c["code"]]["title"] in notes, (name, c["code"])
    assert TEXTS["contraindicated"]["text"] not in detail, name


def _check_not_supported(name: str, card: dict[str, Any], recent_days: int) -> None:
    detail = card["detail"]
    first, _, rest = detail.partition("\n")
    assert first.startswith(f"**{TEXTS['order']['text']['not_supported_lead']}:** "), name
    assert _orders(first), name
    assert TEXTS["order"]["text"]["not_supported"].format(days=recent_days) in rest, name
    old = re.search(r"is (\d+) days old", card["summary"])
    if old:
        assert f"is {old.group(1)} days old" in rest, name
        assert f"benefit is greatest within {recent_days} days of the fracture" in rest, name
    assert "\n- **" not in detail, name  # no fracture is recent: none is listed
    _no_referral_advice(detail, name)


def _check_caution(name: str, card: dict[str, Any]) -> None:
    found = with_defaults(card["extension"][FINDING])
    detail = card["detail"]
    first, _, rest = detail.partition("\n")
    assert first.startswith(f"**{TEXTS['order']['text']['caution_lead']}:** "), name
    assert _orders(first), name
    heading = f"**{TEXTS['order']['text']['caution']}**"
    assert heading in rest, name
    fractures, notes = rest.split(heading, 1)
    for f in found["fractures"]:
        assert f["diagnosedOn"] in fractures, name
    assert found["contraindications"], name
    for c in found["contraindications"]:
        assert TEXTS["notes"][c["code"]]["title"] in notes, (name, c["code"])
    _no_referral_advice(detail, name)


def _check_evaluate(name: str, card: dict[str, Any]) -> None:
    """§7: a fracture reported with no sign of age: the quoted sentence, the osteoporosis and MRI
    advice, the problem-list suggestion, and never referral advice or a referral."""
    detail = card["detail"]
    assert TEXTS["evaluate"]["text"] in detail, name
    assert "“" in detail, name  # the report's sentence, quoted
    _no_referral_advice(detail, name)
    created = [a["resource"]["resourceType"] for s in card.get("suggestions", []) for a in s["actions"]]
    assert created, name
    assert set(created) == {"Condition"}, name


def _check(folder: Path, recent_days: int) -> int:
    hook, cards, by_ref = _answer(folder, recent_days)
    for card in cards:
        recommendation = card["extension"][FINDING]["recommendation"]
        if recommendation == "contraindicated":
            _check_contraindicated(folder.name, hook, card, by_ref, recent_days)
        elif recommendation == "refer":
            _check_refer(folder.name, card, recent_days)
        elif recommendation == "order-not-supported":
            _check_not_supported(folder.name, card, recent_days)
        elif recommendation == "order-caution":
            _check_caution(folder.name, card)
        elif recommendation == "evaluate":
            _check_evaluate(folder.name, card)
        else:
            pytest.fail(f"{folder.name}: no layout rule for {recommendation}")
    return len(cards)


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_card_follows_the_layout_of_its_recommendation(folder: Path) -> None:
    _check(folder, default_recent_days())


def test_every_layout_is_exercised_by_some_fixture() -> None:
    seen = set()
    for folder in SCENARIOS:
        hook, cards, _ = _answer(folder, default_recent_days())
        for card in cards:
            seen.add((hook == "patient-view", card["extension"][FINDING]["recommendation"]))
    assert {
        (True, "refer"),
        (True, "contraindicated"),
        (True, "evaluate"),
        (False, "contraindicated"),
        (False, "order-not-supported"),
        (False, "order-caution"),
    } <= seen


def test_every_fixture_states_the_configured_window_of_ten_days() -> None:
    """CDS_RECENT_DAYS=10: every card that states the window says 10, none says two months or 60."""
    cards = 0
    windows = 0
    for folder in SCENARIOS:
        cards += _check(folder, 10)
        for card in _answer(folder, 10)[1]:
            text = card["summary"] + "\n" + card["detail"]
            assert "two months" not in text, folder.name
            assert not re.search(r"\b60\b", text), (folder.name, text)
            windows += "within 10 days" in text
    assert cards >= 10
    assert windows >= 5


def test_partials_written_in_place_render_what_their_includes_render(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every template render of every fixture's card (each hook, the default window), captured, then
    # rendered again from the sources as written, with the partials included.
    import jinja2

    rendered: list[tuple[str, dict[str, Any], str]] = []
    plain_render = jinja2.Template.render

    def capture(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        out = plain_render(self, *args, **kwargs)
        rendered.append((str(self.name), kwargs, out))
        return out

    monkeypatch.setattr(jinja2.Template, "render", capture)
    for folder in SCENARIOS:
        answer(folder)
    monkeypatch.undo()
    included = load_card_content(inline_partials=False).templates
    layouts = {f"{layout}.md.j2": layout for layout in included}
    assert {name for name, _, _ in rendered} == set(layouts)  # every layout is exercised
    for name, kwargs, out in rendered:
        assert included[layouts[name]].render(**kwargs) == out, name  # type: ignore[index]


def test_the_shipped_layouts_have_their_partials_in_place() -> None:
    from importlib.resources import files

    from cds_service.core.card_builder import _template_source

    root = files("cds_service.cards")
    for layout in load_card_content().templates:
        assert "{% include" not in _template_source(root, f"{layout}.md.j2"), layout
