"""The clinical content files: well-formed, sourced, and consistent with the rules."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
from support.builders import ICD, ROOT, SCT

from cds_service.core.card_builder import load_card_content
from cds_service.core.terminology import LOINC, Terminology, normalise_code

VALUESET_DIR = files("cds_service.cards") / "valuesets"


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

    root = ROOT
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(root).parts) for init in (root / "cds_service").rglob("__init__.py")
    }
    assert found <= listed


KNOWLEDGE_DIR = files("cds_service.cards")
SHARED_VALUESETS = ROOT.parent / "shared" / "valuesets"


@pytest.mark.parametrize(
    "text",
    [
        "spine",
        "thoracic spine",
        "lumbar spine",
        "thoracolumbar spine",
        "T-spine",
        "L-spine",
        "T spine",
        "MRI THORACIC SPINE WO CONTRAST",
        "XR thoracic spine 2 views",
        "vertebra",
        "vertebrae",
        "vertebral",
        "CT chest, abdomen and T-spine",
    ],
)
def test_spine_text_matches(terminology: Terminology, text: str) -> None:
    assert terminology.text_matches("spine-body-site", text)


@pytest.mark.parametrize(
    "text",
    [
        "cervical spine",
        "CT CERVICAL SPINE",
        "C-spine",
        "c spine",
        "MRI C-SPINE WO CONTRAST",
        "cervical-spine",
        "thoracic",
        "chest",
        "CT chest",
        "CTA thoracic aorta",
        "XR ribs",
        "rib",
        "shoulder",
        "hip",
        "pelvis",
    ],
)
def test_spine_text_rejects_cervical_and_non_spine(terminology: Terminology, text: str) -> None:
    assert not terminology.text_matches("spine-body-site", text)


SECTION_4_LOINC = {
    "24968-0": "MR",
    "30679-5": "MR",
    "24980-5": "MR",
    "36532-0": "MR",
    "36067-7": "MR",
    "30854-4": "MR",
    "24963-1": "CT",
    "24978-9": "CT",
    "24970-6": "DX",
    "24983-9": "DX",
    "25031-6": "NM",
    "39818-0": "NM",
    "39879-2": "NM",
}


@pytest.mark.parametrize(("code", "modality"), SECTION_4_LOINC.items())
def test_every_section_4_loinc_is_a_spine_study_with_its_modality(
    terminology: Terminology, code: str, modality: str
) -> None:
    meaning = terminology.meaning(LOINC, code)
    assert meaning is not None
    assert "spine-imaging-procedure" in meaning.concepts
    assert meaning.modality == modality


@pytest.mark.parametrize("code", ["91302008", "76571007", "203241002"])
def test_snomed_sepsis_and_vertebral_osteomyelitis_are_infection(terminology: Terminology, code: str) -> None:
    meaning = terminology.meaning(SCT, code)
    assert meaning is not None
    rules = terminology.contraindication_rules(meaning.concepts)
    assert [(r.code, r.kind) for r in rules] == [("infection", "absolute")]


@pytest.mark.parametrize(
    "code", ["D68.5", "D68.51", "D68.52", "D68.59", "D68.6", "D68.61", "D68.62", "D68.69"]
)
def test_thrombophilias_are_not_coagulopathy(terminology: Terminology, code: str) -> None:
    meaning = terminology.meaning(ICD, code)
    codes = {r.code for r in terminology.contraindication_rules(meaning.concepts)} if meaning else set()
    assert "coagulopathy" not in codes


@pytest.mark.parametrize(
    "code", ["D68.0", "D68.00", "D68.020", "D68.1", "D68.311", "D68.32", "D68.4", "D68.9"]
)
def test_bleeding_defects_stay_coagulopathy(terminology: Terminology, code: str) -> None:
    meaning = terminology.meaning(ICD, code)
    assert meaning is not None
    assert "coagulopathy" in {r.code for r in terminology.contraindication_rules(meaning.concepts)}


@pytest.mark.skipif(
    not SHARED_VALUESETS.is_dir(), reason="the VSAC reference copy lives in ../shared (CI, dev machines)"
)
def test_every_vsac_coagulation_disorder_is_coagulopathy(terminology: Terminology) -> None:
    doc = json.loads((SHARED_VALUESETS / "valueset-2.16.840.1.113762.1.4.1248.23.json").read_text())
    codes = [c["code"] for c in doc["expansion"]["contains"] if c["system"] == ICD]
    assert len(codes) == 44
    for code in codes:
        meaning = terminology.meaning(ICD, code)
        assert meaning is not None, code
        assert "coagulopathy" in {r.code for r in terminology.contraindication_rules(meaning.concepts)}, code


def _systems_used_by_value_sets() -> set[str]:
    return {part["system"] for doc in _docs() for part in doc["compose"]}


def test_code_system_aliases_are_oids_of_systems_the_value_sets_use() -> None:
    doc = json.loads((KNOWLEDGE_DIR / "code-systems.json").read_text())
    assert doc["sources"]
    assert doc["description"]
    aliases: dict[str, str] = doc["aliases"]
    assert set(aliases) == {f"urn:oid:2.16.840.1.113883.6.{n}" for n in (90, 96, 88, 1, 12, 4)}
    assert set(aliases.values()) <= _systems_used_by_value_sets()
    assert aliases["urn:oid:2.16.840.1.113883.6.90"] == ICD
    assert "http://hl7.org/fhir/sid/icd-10" not in set(aliases) | set(aliases.values())


def test_problem_list_codes_fit_their_etiology_and_region(terminology: Terminology) -> None:
    doc = json.loads((KNOWLEDGE_DIR / "problem-list-codes.json").read_text())
    assert doc["sources"]
    assert doc["category"]["code"] == "problem-list-item"
    assert doc["verificationStatus"]["code"] == "unconfirmed"
    entries = doc["codes"]
    assert {e["etiology"] for e in entries} == {"osteoporotic", "pathologic", "unspecified"}
    fallbacks = {e["etiology"] for e in entries if e["region"] == "any"}
    assert fallbacks == {"osteoporotic", "pathologic", "unspecified"}, (
        "every etiology needs a region-less entry"
    )
    for entry in entries:
        for coding in entry["codings"]:
            assert coding["display"]
            meaning = terminology.meaning(coding["system"], coding["code"])
            if coding["code"] == "42942008":
                continue  # compression fracture of vertebral column: level-unknown, not a trigger code
            assert meaning is not None, coding["code"]
            if entry["region"] != "any" and meaning.region is not None:
                assert meaning.region == entry["region"], coding["code"]
            if entry["etiology"] != "unspecified":
                etiologies = {rule.etiology for rule in terminology.triggers(meaning.concepts)}
                assert entry["etiology"] in etiologies, coding["code"]
