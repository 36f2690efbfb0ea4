"""The clinical content files: well-formed, sourced, and consistent with the rules."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
from support.builders import ICD, SCT

from cds_service.core.card_builder import load_card_content
from cds_service.core.terminology import Terminology, normalise_code

VALUESET_DIR = files("cds_service") / "knowledge" / "valuesets"


def _docs() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in VALUESET_DIR.iterdir() if p.name.endswith(".json")]


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: d["id"])
def test_every_value_set_names_its_sources_and_has_codes(doc: dict[str, Any]) -> None:
    assert doc["sources"], "a value set without a source cannot be reviewed"
    assert doc["title"]
    assert doc["description"]
    assert any(part.get("concepts") or part.get("patterns") for part in doc["compose"])


def test_value_set_file_names_match_ids() -> None:
    for path in VALUESET_DIR.iterdir():
        if path.name.endswith(".json"):
            assert json.loads(path.read_text())["id"] == path.name.removesuffix(".json")


@pytest.mark.parametrize(
    ("code", "normalised"), [("M80.08XA", "M8008XA"), ("m80.08xa", "M8008XA"), (" 24968-0 ", "24968-0")]
)
def test_normalise_code(code: str, normalised: str) -> None:
    assert normalise_code(code) == normalised


def test_no_out_of_scope_code_is_a_trigger(terminology: Terminology) -> None:
    out_of_scope = next(d for d in _docs() if d["id"] == "fracture-out-of-scope")
    for part in out_of_scope["compose"]:
        for concept in part.get("concepts", []):
            meaning = terminology.meaning(part["system"], concept["code"])
            assert meaning is not None
            assert not terminology.triggers(meaning.concepts), concept["code"]
    for code in ("S12.000A", "S12.9XXA", "S12.100A"):
        meaning = terminology.meaning(ICD, code)
        assert meaning is not None
        assert not terminology.triggers(meaning.concepts)


def test_pattern_and_exact_lookups(terminology: Terminology) -> None:
    m = terminology.meaning(ICD, "S32.020A")
    assert m is not None
    assert m.level == "L2"
    assert terminology.meaning(ICD, "S32.020B") is None  # open fracture: no concept at all
    assert terminology.meaning(ICD, "M46.25") is not None
    assert terminology.meaning(SCT, "999999999") is None
    assert terminology.meaning("http://example.org", "M80.08XA") is None
    assert terminology.meaning(ICD, None) is None


def test_fracture_code_is_also_osteoporosis_on_record(terminology: Terminology) -> None:
    m = terminology.meaning(ICD, "M80.08XA")
    assert m is not None
    assert {"fracture-osteoporotic-vertebral", "osteoporosis"} <= m.concepts


def test_every_contraindication_has_card_text() -> None:
    texts = load_card_content().texts
    codes = {d["contraindication"]["code"] for d in _docs() if "contraindication" in d} | {"multiple-levels"}
    # clinical-rules §5 and §7 notes that come from rules rather than from one value set
    rule_notes = {"multiple-levels", "malignancy-on-record", "imaging-chronic", "imaging-discordant"}
    assert codes | rule_notes == set(texts["notes"])
    for code in codes | rule_notes:
        assert texts["notes"][code]["title"]
        assert texts["notes"][code]["action"]
        assert texts["notes"][code]["source"]


def test_vertebra_level_codes_cover_t1_to_l5(terminology: Terminology) -> None:
    spine = next(d for d in _docs() if d["id"] == "spine-body-site")
    levels = {c["level"] for c in spine["compose"][0]["concepts"] if "level" in c}
    assert levels == {f"T{n}" for n in range(1, 13)} | {f"L{n}" for n in range(1, 6)}
    chest = terminology.meaning(SCT, "51185008")
    assert chest is None  # the thorax is not spine


def test_every_python_package_ships_in_the_wheel() -> None:
    """A subpackage missing from pyproject's list works in the checkout and breaks the installed app."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(root).parts) for init in (root / "cds_service").rglob("__init__.py")
    }
    assert found <= listed
