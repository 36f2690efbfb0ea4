"""Report text (clinical-rules §7): extraction, the text finding rules clause by clause, the corpus."""

from __future__ import annotations

import base64
import bisect
import csv
import itertools
import json
import random
import time
from pathlib import Path

import pytest
from support.builders import TEST_DATA

from cds_service.core.rules.report_text import (
    _B64_JUNK,
    _B64_JUNK_BYTES,
    _CONTROL,
    QUOTE_LIMIT,
    ReportTerms,
    TextFinding,
    _control_count,
    _cue_sets,
    _cues,
    _cues_from,
    _foldable,
    _sections,
    _Sentences,
    _Span,
    extract_report_text,
    find_fracture_mentions,
    load_report_terms,
    report_modality,
)

DATA = TEST_DATA


@pytest.fixture(scope="module")
def terms() -> ReportTerms:
    return load_report_terms()


def found(text: str, terms: ReportTerms) -> set[tuple[str | None, str]]:
    return {(f.level, f.classification) for f in find_fracture_mentions(text, terms)}


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode("ascii")


# ---- extraction ------------------------------------------------------------------------------


def test_conclusion_and_plain_attachment_are_both_read() -> None:
    got = extract_report_text(
        "Acute L1 fracture.", [{"contentType": "text/plain", "data": b64("FINDINGS: marrow edema at L1.")}]
    )
    assert "Acute L1 fracture." in got.text
    assert "marrow edema at L1." in got.text
    assert not got.unreadable
    assert not got.truncated


@pytest.mark.parametrize(
    "content_type", ["text/plain; charset=utf-8", "TEXT/PLAIN;CHARSET=UTF-8", 'text/plain;charset="utf-8"']
)
def test_charset_parameter_any_case(content_type: str) -> None:
    got = extract_report_text(None, [{"contentType": content_type, "data": b64("Ödem bei L1.")}])
    assert got.text == "Ödem bei L1."


def test_latin1_charset_is_honoured() -> None:
    got = extract_report_text(
        None, [{"contentType": "text/plain; charset=ISO-8859-1", "data": b64("Œdème L1", "cp1252")}]
    )
    assert "dème L1" in got.text


def test_utf16_charset_is_not_mistaken_for_binary() -> None:
    got = extract_report_text(
        None, [{"contentType": "text/plain; charset=UTF-16", "data": b64("Acute L1.", "utf-16")}]
    )
    assert got.text == "Acute L1."


def test_base64_with_whitespace_and_missing_padding() -> None:
    data = b64("Compression fracture of L1.")
    messy = "\n ".join(data[i : i + 8] for i in range(0, len(data), 8)).rstrip("=")
    got = extract_report_text(None, [{"contentType": "text/plain", "data": messy}])
    assert got.text == "Compression fracture of L1."


def test_html_tags_stripped_script_and_style_dropped_entities_unescaped() -> None:
    page = (
        "<html><head><style>p{color:red}</style><script>alert('acute L1 fracture')</script></head>"
        "<body><h2>IMPRESSION</h2><p>Acute L1 compression fracture &amp; marrow edema.</p>"
        "<p>Chronic T7 wedge deformity.</p></body></html>"
    )
    got = extract_report_text(None, [{"contentType": "text/html; charset=utf-8", "data": b64(page)}])
    assert "alert" not in got.text
    assert "color" not in got.text
    assert "<" not in got.text
    assert "fracture & marrow edema." in got.text
    assert "\n" in got.text.split("IMPRESSION")[1]  # block tags become line breaks


def test_unclosed_script_drops_the_rest() -> None:
    got = extract_report_text(
        None, [{"contentType": "text/html", "data": b64("<p>Fine.</p><script>var x = '<p>L1")}]
    )
    assert "Fine." in got.text
    assert "var" not in got.text


def test_url_only_attachment_is_unreadable() -> None:
    got = extract_report_text(
        None, [{"contentType": "text/plain", "url": "https://ehr.example.org/report/1"}]
    )
    assert got.unreadable
    assert got.text == ""


def test_url_only_with_conclusion_is_readable() -> None:
    got = extract_report_text("No fracture.", [{"contentType": "application/pdf", "url": "Binary/1"}])
    assert not got.unreadable
    assert got.text == "No fracture."


def test_binary_base64_is_unreadable() -> None:
    blob = base64.b64encode(bytes(range(256)) * 8).decode()
    got = extract_report_text(None, [{"contentType": "text/plain", "data": blob}])
    assert got.unreadable
    assert got.text == ""


def test_non_text_attachment_alone_is_unreadable() -> None:
    got = extract_report_text(None, [{"contentType": "application/pdf", "data": b64("%PDF-1.4")}])
    assert got.unreadable


def test_no_text_at_all_is_not_unreadable() -> None:
    got = extract_report_text(None, None)
    assert got == extract_report_text("", [])
    assert not got.unreadable
    assert got.text == ""


def test_one_megabyte_conclusion_is_capped_fast() -> None:
    big = "Acute L1 compression fracture. " * 40000  # ~1.2 MB
    started = time.perf_counter()
    got = extract_report_text(big, None)
    elapsed = time.perf_counter() - started
    assert len(got.text) == 65536
    assert got.truncated
    assert elapsed < 0.5  # generous: slicing, never a scan of the whole string


def test_large_base64_is_cut_before_decoding() -> None:
    data = b64("Mild T12 compression deformity. " * 40000)
    got = extract_report_text(None, [{"contentType": "text/plain", "data": data}], limit=1000)
    assert got.truncated
    assert len(got.text) <= 1000
    assert got.text.startswith("Mild T12")


def test_limit_is_shared_by_conclusion_and_attachments() -> None:
    got = extract_report_text("x" * 900, [{"contentType": "text/plain", "data": b64("y" * 900)}], limit=1000)
    assert got.text.count("y") == 100
    assert got.truncated


@pytest.mark.parametrize(
    ("conclusion", "presented_form"),
    [
        (42, {"contentType": "text/plain", "data": 7}),
        (["a"], [None, 3, "text", [], {"contentType": 5, "data": []}]),
        ({"text": "x"}, {"contentType": "text/plain"}),
        (None, [{"contentType": "text/plain", "data": "!!!not base64!!!"}]),
        (None, [{"contentType": "text/html", "data": b64("<" * 5000 + "a" * 5000)}]),
        (None, [{"contentType": None, "data": None, "url": None}]),
        (True, [{"contentType": "text/plain; charset=no-such-charset", "data": b64("L1 fracture")}]),
        (None, [[[[[[{"contentType": "text/plain"}]]]]]]),
    ],
)
def test_garbage_shapes_never_raise(conclusion: object, presented_form: object, terms: ReportTerms) -> None:
    got = extract_report_text(conclusion, presented_form)
    assert isinstance(got.text, str)
    find_fracture_mentions(got.text, terms)


def test_unknown_charset_falls_back_to_utf8() -> None:
    got = extract_report_text(
        None, [{"contentType": "text/plain; charset=no-such-charset", "data": b64("L1 fracture")}]
    )
    assert got.text == "L1 fracture"


# ---- §7 text findings, clause by clause ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("Compression fracture of L1.", "L1"),
        ("Wedge fracture of T8.", "T8"),
        ("Burst fracture of L2.", "L2"),
        ("Insufficiency fracture of the T10 vertebral body.", "T10"),
        ("Compression deformity of T12.", "T12"),
        ("Wedge deformity of T6.", "T6"),
        ("Collapse of the L3 vertebral body.", "L3"),
        ("Loss of height of the L1 vertebral body.", "L1"),
        ("Fracture of the L4 vertebral body.", "L4"),
        ("L5 fracture.", "L5"),
    ],
)
def test_fracture_words_assert_a_fracture(text: str, level: str, terms: ReportTerms) -> None:
    assert found(text, terms) == {(level, "unqualified")}


@pytest.mark.parametrize(
    "text",
    [
        "Fracture line artifact.",
        "Partial collapse of the left lower lobe.",
        "Insufficiency fracture of the left femoral neck.",
        "Loss of disc height at L4-5.",
        "Vertebral body heights are maintained.",
    ],
)
def test_other_words_are_not_fracture_words(text: str, terms: ReportTerms) -> None:
    assert find_fracture_mentions(text, terms) == ()


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("Compression fracture of T12.", {"T12"}),
        ("Compression fracture of T-12.", {"T12"}),
        ("Compression fracture of T 12.", {"T12"}),
        ("Compression fracture of Th12.", {"T12"}),
        ("Compression fractures of T12 and L1.", {"T12", "L1"}),
        ("Compression fractures of T11, T12 and L1.", {"T11", "T12", "L1"}),
        ("Compression fractures of T11, T12, and L1.", {"T11", "T12", "L1"}),
        ("Compression fractures T11-L1.", {"T11", "T12", "L1"}),
        ("Compression fractures T11–L1.", {"T11", "T12", "L1"}),
        ("Compression fractures from T11 through L1.", {"T11", "T12", "L1"}),
        ("Compression fractures T5-7.", {"T5", "T6", "T7"}),
    ],
)
def test_levels_single_lists_ranges(text: str, levels: set[str], terms: ReportTerms) -> None:
    assert {f.level for f in find_fracture_mentions(text, terms)} == levels


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("Multiple thoracic compression deformities.", "thoracic"),
        ("Compression deformity of an upper lumbar vertebral body.", "lumbar"),
        ("Moderate compression deformity at the thoracolumbar junction.", "thoracolumbar"),
    ],
)
def test_regions_without_level(text: str, region: str, terms: ReportTerms) -> None:
    (finding,) = find_fracture_mentions(text, terms)
    assert (finding.level, finding.region) == (None, region)


def test_vertebral_body_without_level(terms: ReportTerms) -> None:
    (finding,) = find_fracture_mentions("Mild compression deformity of a vertebral body.", terms)
    assert (finding.level, finding.region, finding.classification) == (None, None, "unqualified")


def test_level_findings_carry_their_region(terms: ReportTerms) -> None:
    (t12,) = find_fracture_mentions("Compression deformity of T12.", terms)
    (l1,) = find_fracture_mentions("Compression deformity of L1.", terms)
    assert (t12.region, l1.region) == ("thoracic", "lumbar")


@pytest.mark.parametrize(
    "text",
    [
        "Disc height loss at L4-5.",
        "Severe loss of height of the L4-L5 intervertebral disc.",
        "Acute fracture of the left L2 transverse process.",
        "Fracture of the T12 spinous process.",
        "Fracture of the right L4 pedicle.",
        "Acute fractures of the left 9th and 10th ribs.",
        "Fracture of the left T11 rib.",
    ],
)
def test_exclusions_discs_processes_pedicles_ribs(text: str, terms: ReportTerms) -> None:
    assert find_fracture_mentions(text, terms) == ()


def test_exclusion_does_not_swallow_a_neighbouring_fracture(terms: ReportTerms) -> None:
    text = "Acute compression fracture of L1 and a disc bulge at L4-5."
    assert found(text, terms) == {("L1", "acute")}


@pytest.mark.parametrize(
    "text",
    ["Compression fracture of C6.", "Sacral insufficiency fracture.", "Acute fracture of the S1 segment."],
)
def test_cervical_or_sacral_alone_is_no_finding(text: str, terms: ReportTerms) -> None:
    assert find_fracture_mentions(text, terms) == ()


def test_cervical_with_thoracic_keeps_the_thoracic_level(terms: ReportTerms) -> None:
    assert found("Compression fractures of C7 and T1.", terms) == {("T1", "unqualified")}


@pytest.mark.parametrize(
    "text",
    [
        "Compression fracture of L1, hypointense on T1 and hyperintense on T2.",
        "Compression fracture of L1 with T2 hyperintense signal.",
        "Compression fracture of L1 on T1-weighted images.",
        "Compression fracture of L1 on sagittal T2 sequence.",
        "Compression fracture of L1 with T1 and T2 weighted signal change.",
    ],
)
def test_t1_t2_followed_by_sequence_words_are_not_levels(text: str, terms: ReportTerms) -> None:
    assert {f.level for f in find_fracture_mentions(text, terms)} == {"L1"}


def test_t1_t2_as_levels_still_count(terms: ReportTerms) -> None:
    assert {f.level for f in find_fracture_mentions("Compression fractures of T1 and T2.", terms)} == {
        "T1",
        "T2",
    }


@pytest.mark.parametrize(
    "heading", ["CLINICAL HISTORY", "HISTORY", "INDICATION", "REASON", "TECHNIQUE", "COMPARISON"]
)
def test_question_and_method_sections_are_skipped(heading: str, terms: ReportTerms) -> None:
    text = f"{heading}: Acute L1 compression fracture?\nFINDINGS: Vertebral body heights are maintained.\n"
    assert find_fracture_mentions(text, terms) == ()


@pytest.mark.parametrize("heading", ["FINDINGS", "IMPRESSION", "Impression"])
def test_findings_and_impression_count(heading: str, terms: ReportTerms) -> None:
    text = f"HISTORY: back pain.\n{heading}: Acute L1 compression fracture.\n"
    (finding,) = find_fracture_mentions(text, terms)
    assert finding.section == heading.lower()
    assert finding.classification == "acute"


def test_text_without_headings_counts(terms: ReportTerms) -> None:
    (finding,) = find_fracture_mentions("Acute L1 compression fracture.", terms)
    assert finding.section is None


def test_headings_inline_after_a_sentence(terms: ReportTerms) -> None:
    text = "EXAM: MRI lumbar spine. HISTORY: L1 fracture? FINDINGS: Chronic T12 compression deformity."
    assert found(text, terms) == {("T12", "chronic")}


def test_parts_restart_the_section(terms: ReportTerms) -> None:
    got = extract_report_text(
        "Acute L2 compression fracture.",
        [{"contentType": "text/plain", "data": b64("COMPARISON: none. Old L3 fracture noted before.")}],
    )
    text = "COMPARISON: CT 2025.\f\n" + got.text
    assert found(text, terms) == {("L2", "acute")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Compression fracture of T12. The L1 vertebral body is normal.", {("T12", "unqualified")}),
        (
            "Acute compression fracture of T12. Chronic L1 compression deformity.",
            {("T12", "acute"), ("L1", "chronic")},
        ),
        ("Compression fracture of L1 measuring 2.5 cm. Marrow edema in T9.", {("L1", "unqualified")}),
        ("Compression fracture of L1, acute vs. subacute.", {("L1", "acute")}),
        (
            "IMPRESSION: 1. Acute L1 compression fracture. 2. Old T7 wedge deformity.",
            {("L1", "acute"), ("T7", "chronic")},
        ),
    ],
)
def test_sentence_splitting(text: str, expected: set[tuple[str, str]], terms: ReportTerms) -> None:
    assert found(text, terms) == expected


def test_sentence_splitting_keeps_wrapped_lines_together(terms: ReportTerms) -> None:
    text = "FINDINGS: There is an acute compression fracture of\nL1 with marrow edema.\nNo other fracture."
    assert found(text, terms) == {("L1", "acute")}


@pytest.mark.parametrize(
    ("text", "classification"),
    [
        ("No compression fracture of L1.", "negated"),
        ("Without compression deformity of L1.", "negated"),
        ("Negative for compression fracture of L1.", "negated"),
        ("No evidence of compression fracture of L1.", "negated"),
        ("The L1 compression fracture has been ruled out.", "negated"),
        ("The L1 compression fracture has resolved.", "negated"),
        ("Possible compression fracture of L1.", "uncertain"),
        ("Probable compression fracture of L1.", "uncertain"),
        ("Findings may represent a compression fracture of L1.", "uncertain"),
        ("Cannot exclude compression fracture of L1.", "uncertain"),
        ("A compression fracture of L1 cannot be excluded.", "uncertain"),
        ("Suspicious for compression fracture of L1.", "uncertain"),
        ("Questionable compression fracture of L1.", "uncertain"),
        ("Acute compression fracture of L1.", "acute"),
        ("Subacute compression fracture of L1.", "acute"),
        ("New compression fracture of L1.", "acute"),
        ("Recent compression fracture of L1.", "acute"),
        ("Compression fracture of L1 with marrow oedema.", "acute"),
        ("Compression fracture of L1 with marrow edema.", "acute"),
        ("STIR hyperintense compression fracture of L1.", "acute"),
        ("Compression fracture of L1 with STIR hyperintensity.", "acute"),
        ("Compression fracture of L1 with a fracture line.", "acute"),
        ("Compression fracture of L1 with progression of height loss.", "acute"),
        ("Intense uptake at L1 consistent with a compression fracture.", "acute"),
        ("Old compression fracture of L1.", "chronic"),
        ("Chronic compression fracture of L1.", "chronic"),
        ("Remote compression fracture of L1.", "chronic"),
        ("Healed compression fracture of L1.", "chronic"),
        ("Sclerotic compression fracture of L1.", "chronic"),
        ("Compression fracture of L1 with no marrow oedema.", "chronic"),
        ("Compression fracture of L1 with no marrow edema.", "chronic"),
        ("Unchanged compression fracture of L1.", "chronic"),
        ("Stable compression fracture of L1.", "chronic"),
        ("Known compression fracture of L1.", "chronic"),
        ("Prior compression fracture of L1.", "chronic"),
        ("Compression fracture of L1.", "unqualified"),
    ],
)
def test_cue_lists(text: str, classification: str, terms: ReportTerms) -> None:
    assert found(text, terms) == {("L1", classification)}


@pytest.mark.parametrize(
    ("text", "classification"),
    [
        ("No possible compression fracture of L1.", "negated"),  # negated > uncertain
        ("Possible acute compression fracture of L1.", "uncertain"),  # uncertain > acute
        ("Known L1 compression fracture with new marrow edema.", "acute"),  # acute > chronic
        ("Chronic L1 compression deformity with new marrow edema.", "acute"),
        ("Old compression fracture of L1.", "chronic"),  # chronic > unqualified
    ],
)
def test_precedence(text: str, classification: str, terms: ReportTerms) -> None:
    assert found(text, terms) == {("L1", classification)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No retropulsion, but acute compression fracture of L1.", {("L1", "acute")}),
        ("No retropulsion; acute compression fracture of L1.", {("L1", "acute")}),
        ("No retropulsion. Acute compression fracture of L1.", {("L1", "acute")}),
        ("No canal stenosis, however there is a compression fracture of L1.", {("L1", "unqualified")}),
        ("No acute fracture, compression fracture of L1 and T12.", {("L1", "negated"), ("T12", "negated")}),
    ],
)
def test_scope_ends_at_but_however_semicolon_sentence(
    text: str, expected: set[tuple[str, str]], terms: ReportTerms
) -> None:
    assert found(text, terms) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Fracture of L1 without retropulsion.",
        "Compression fracture of L1 with no retropulsion.",
        "Compression fracture of L1 without canal compromise or cord compression.",
    ],
)
def test_with_without_after_the_fracture_describe_it(text: str, terms: ReportTerms) -> None:
    assert found(text, terms) == {("L1", "unqualified")}


def test_without_before_the_fracture_negates(terms: ReportTerms) -> None:
    assert found("Vertebral body heights are maintained without compression fracture of L1.", terms) == {
        ("L1", "negated")
    }


@pytest.mark.parametrize(
    ("text", "classification"),
    [
        ("Compression fracture of L1, unchanged compared with prior.", "chronic"),
        ("Compared with prior, there is a compression fracture of L1.", "unqualified"),
        ("Since the prior study, a compression fracture of L1 has developed.", "unqualified"),
        ("Compression fracture of L1, in this patient with known osteoporosis.", "unqualified"),
        ("Stable compression fracture of L1.", "chronic"),
        ("Compression fracture of L1 with stable alignment.", "unqualified"),
        ("Compression fracture of L1 on the prior MRI.", "unqualified"),
    ],
)
def test_unchanged_stable_known_prior_only_about_the_fracture(
    text: str, classification: str, terms: ReportTerms
) -> None:
    assert found(text, terms) == {("L1", classification)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Chronic T7 wedge deformity and new acute fracture of T11.", {("T7", "chronic"), ("T11", "acute")}),
        ("Acute L1 and chronic T7 compression fractures.", {("L1", "acute"), ("T7", "chronic")}),
        (
            "Compression fracture of L1 with marrow edema and an old wedge deformity of T7.",
            {("L1", "acute"), ("T7", "chronic")},
        ),
        ("Acute compression fractures of T12 and L1.", {("T12", "acute"), ("L1", "acute")}),
    ],
)
def test_two_levels_two_cues(text: str, expected: set[tuple[str, str]], terms: ReportTerms) -> None:
    assert found(text, terms) == expected


def test_bone_scan_uptake_at_the_level_is_acute(terms: ReportTerms) -> None:
    assert found("Focal intense uptake at T8 in keeping with a compression fracture.", terms) == {
        ("T8", "acute")
    }
    assert found("No abnormal uptake at the T8 compression deformity.", terms) == {("T8", "chronic")}


def test_age_indeterminate_is_unqualified(terms: ReportTerms) -> None:
    assert found("Compression fracture of L1, acute versus chronic.", terms) == {("L1", "unqualified")}
    assert found("Compression fracture of L1 of indeterminate age.", terms) == {("L1", "unqualified")}


def test_one_finding_per_level_per_sentence(terms: ReportTerms) -> None:
    findings = find_fracture_mentions(
        "Compression fracture of L1; the L1 fracture shows marrow edema.", terms
    )
    assert [(f.level, f.classification) for f in findings] == [("L1", "acute")]


def test_negated_findings_are_returned(terms: ReportTerms) -> None:
    (finding,) = find_fracture_mentions("No compression fracture.", terms)
    assert finding == TextFinding(None, None, "negated", "No compression fracture.", None)


def test_quote_is_the_sentence_with_whitespace_collapsed(terms: ReportTerms) -> None:
    (finding,) = find_fracture_mentions(
        "FINDINGS:\n  Acute   L1 compression\n   fracture.  Normal conus.", terms
    )
    assert finding.quote == "Acute L1 compression fracture."


def test_quote_is_trimmed_around_the_fracture_words(terms: ReportTerms) -> None:
    sentence = (
        "In this elderly patient with a long history of back pain, multiple falls, steroid use and previous "
        "hospitalisations, there is a moderate compression fracture of L1 with extensive marrow edema, "
        "retropulsion of 3 mm, mild canal narrowing, and associated paraspinal soft tissue swelling "
        "extending over several levels."
    )
    (finding,) = find_fracture_mentions(sentence, terms)
    assert len(finding.quote) <= QUOTE_LIMIT
    assert "compression fracture of L1" in finding.quote
    assert finding.quote.startswith("…")
    assert finding.quote.endswith("…")


def test_duplicate_conclusion_and_impression_give_one_finding(terms: ReportTerms) -> None:
    text = "IMPRESSION: Acute L1 compression fracture.\f\nAcute L1 compression fracture."
    assert len(find_fracture_mentions(text, terms)) == 1


@pytest.mark.parametrize(
    "hostile",
    [
        ("compression fracture of T12 and L1 " * 2000 + "(" * 5000 + "L1-" * 5000)[:65536],
        ("No " * 20000 + "compression fracture")[:65536],
        "Compression fracture of T12, " * 2200,
        "Acute compression fracture of L1 with marrow edema. " * 1300,
    ],
    ids=["mixed", "one-long-negation", "one-long-sentence", "many-sentences"],
)
def test_hostile_text_is_bounded_and_safe(hostile: str, terms: ReportTerms) -> None:
    findings = find_fracture_mentions(hostile, terms)
    assert all(len(f.quote) <= QUOTE_LIMIT for f in findings)
    assert len(findings) <= 50 * 8  # the per-text caps bound the work (speed: benchmarks/)


# ---- modality --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "modality"),
    [
        (["MR Lumbar spine WO contrast"], "MR"),
        (["MRI thoracic spine"], "MR"),
        (["Magnetic resonance imaging of the spine"], "MR"),
        (["CT Abdomen and Pelvis W contrast"], "CT"),
        (["Computed tomography of the chest"], "CT"),
        (["XR Lumbar spine 2 views"], "XR"),
        (["X-ray thoracic spine"], "XR"),
        (["Radiographs of the lumbar spine"], "XR"),
        (["NM Bone scan whole body"], "NM"),
        (["Whole body bone scan"], "NM"),
        (["Skeletal scintigraphy"], "NM"),
        (["SPECT/CT lumbar spine"], "NM"),
        ([], None),
        (["Report"], None),
        ([None, "Lumbar spine", "CT lumbar spine"], "CT"),  # type: ignore[list-item]
    ],
)
def test_report_modality(texts: list[str], modality: str | None, terms: ReportTerms) -> None:
    assert report_modality(texts, terms) == modality


def test_mr_is_case_sensitive_for_abbreviations(terms: ReportTerms) -> None:
    assert report_modality(["Mr Smith spine study"], terms) is None


# ---- data ------------------------------------------------------------------------------------


def test_terms_file_names_its_sources() -> None:
    from importlib.resources import files

    doc = json.loads((files("cds_service.cards") / "report-terms.json").read_text())
    assert any("clinical-rules.md §7" in s for s in doc["sources"])
    assert any("NegEx" in s for s in doc["sources"])
    assert any("ConText" in s for s in doc["sources"])


def test_terms_load_from_another_file(tmp_path: Path) -> None:
    from importlib.resources import files

    doc = json.loads((files("cds_service.cards") / "report-terms.json").read_text())
    doc["cues"]["acute"].append("fresh")
    path = tmp_path / "terms.json"
    path.write_text(json.dumps(doc))
    custom = load_report_terms(path)
    assert found("Fresh compression fracture of L1.", custom) == {("L1", "acute")}
    assert found("Fresh compression fracture of L1.", load_report_terms()) == {("L1", "unqualified")}


# ---- the labelled corpus ---------------------------------------------------------------------


def test_corpus_sensitivity_and_specificity(terms: ReportTerms, capsys: pytest.CaptureFixture[str]) -> None:
    with (DATA / "report_sentences.tsv").open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    labels = {r["expected"] for r in rows}
    assert labels == {"acute", "chronic", "negated", "uncertain", "unqualified", "none"}
    assert len(rows) >= 240
    positives = [r for r in rows if r["expected"] == "acute"]
    negatives = [r for r in rows if r["expected"] != "acute"]
    missed, false_alarms = [], []
    for row in positives:
        acute = {
            f.level for f in find_fracture_mentions(row["sentence"], terms) if f.classification == "acute"
        }
        if acute != set(row["levels"].split(",")):
            missed.append(row["sentence"])
    for row in negatives:
        if any(f.classification == "acute" for f in find_fracture_mentions(row["sentence"], terms)):
            false_alarms.append(row["sentence"])
    sensitivity = 1 - len(missed) / len(positives)
    specificity = 1 - len(false_alarms) / len(negatives)
    with capsys.disabled():
        print(
            f"\nreport sentence corpus: {len(rows)} sentences, "
            f"{len(positives)} acute / {len(negatives)} not; "
            f"sensitivity {sensitivity:.3f}, specificity {specificity:.3f}"
        )
    assert sensitivity >= 0.95, missed
    assert specificity >= 0.98, false_alarms


# ---- the pending report fixtures (data for the integration; not evaluated here) -------------


PENDING = sorted((DATA.parent.parent / "fhir_fixtures").glob("1[0-4][0-9]-report-*"))


def test_there_are_at_least_40_report_fixtures() -> None:
    assert len(PENDING) >= 40


@pytest.mark.parametrize("folder", PENDING, ids=lambda p: p.name)
def test_pending_report_fixture_is_well_formed(folder: Path, terms: ReportTerms) -> None:
    short = "s" + folder.name[:3]
    bundle = json.loads((folder / "bundle.json").read_text())
    scenario = json.loads((folder / "scenario.json").read_text())
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    assert {"description", "asOf", "rules", "hook", "expected"} <= scenario.keys()
    assert "cards" in scenario["expected"]
    resources = [e["resource"] for e in bundle["entry"]]
    assert all("fullUrl" in e for e in bundle["entry"])
    assert all(r["id"].startswith(short + "-") for r in resources)
    assert sum(r["resourceType"] == "Patient" for r in resources) == 1
    reports = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    assert reports
    for report in reports:
        assert {"status", "code", "subject", "category"} <= report.keys()
        assert report["subject"] == {"reference": f"Patient/{short}-patient"}
    text = json.dumps(scenario["expected"])
    assert "null" not in text


@pytest.mark.parametrize("folder", PENDING, ids=lambda p: p.name)
def test_pending_fixture_text_agrees_with_its_expected_report_findings(
    folder: Path, terms: ReportTerms
) -> None:
    """The text part of each scenario: every expected report classification is what the text says."""
    bundle = json.loads((folder / "bundle.json").read_text())
    expected = json.loads((folder / "scenario.json").read_text())["expected"]
    reports = {
        f"DiagnosticReport/{e['resource']['id']}": e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    }
    for fracture in expected.get("fractures", []):
        classification = fracture.get("report", {}).get("classification")
        if classification is None:
            continue
        said = set()
        for ref in fracture["evidence"]:
            if ref in reports:
                report = reports[ref]
                text = extract_report_text(report.get("conclusion"), report.get("presentedForm")).text
                said |= {
                    (f.level, f.region if f.level is None else None, f.classification)
                    for f in find_fracture_mentions(text, terms)
                }
        key = fracture.get("level"), None if "level" in fracture else fracture.get("region")
        assert (*key, classification) in said, (folder.name, said)


# ---- the speed-ups change nothing -------------------------------------------------------------


def _whole_text_sentence(text: str, terms: ReportTerms, cuts: list[int], position: int) -> tuple[int, int]:
    """Reference: every boundary of the whole text, then the sentence (or piece) holding `position`."""
    bounds = {0, len(text), *cuts}
    probe = _Sentences(text, terms, cuts)
    bounds |= {m.end() for m in terms.boundary.finditer(text) if probe._is_end(m)}
    ordered = sorted(bounds)
    pieces = [0]
    for a, b in itertools.pairwise(ordered):
        while b - a > 400:
            blank = text.rfind(" ", a + 200, a + 400)
            a = blank + 1 if blank != -1 else a + 400
            pieces.append(a)
        pieces.append(b)
    i = bisect.bisect_right(pieces, position) - 1
    return pieces[i], pieces[i + 1] if i + 1 < len(pieces) else len(text)


def _mixed_texts() -> list[str]:
    with (DATA / "report_sentences.tsv").open(newline="") as handle:
        sentences = [r["sentence"] for r in csv.DictReader(handle, delimiter="\t")]
    glue = [" ", "\n", "\n\n", ". ", "! ", '?" ', "... ", "\n\f\n", "\n- ", "\n1. ", " vs. ", " Dr. ", ".\n"]
    heads = ["FINDINGS:", "IMPRESSION:", "CLINICAL HISTORY:", "History:", "clinical\nhistory:", "Impression"]
    rng = random.Random(18)
    texts = []
    for _ in range(150):
        count = rng.randint(1, 12)
        texts.append(
            "".join(rng.choice(heads + sentences + sentences) + rng.choice(glue) for _ in range(count))
        )
    texts += ["compression fracture of T12 and L1 " * 40, "x" * 900 + ". " + "y " * 500, "...\n\n\f", ""]
    return texts


def test_local_sentence_scan_equals_the_whole_text_scan(terms: ReportTerms) -> None:
    for text in _mixed_texts():
        cuts = _sections(text, terms)[2]
        local = _Sentences(text, terms, cuts)
        for position in range(len(text) + 2):
            assert local.at(position) == _whole_text_sentence(text, terms, cuts, position), (text, position)


def _plain_cues(text: str, terms: ReportTerms) -> list[_Span]:
    """The cues of one text the slow, obvious way: every list's case-insensitive pattern, no
    pre-check, no folding, no batching."""
    unchecked = [_Span(m.start(), m.end(), c.kind) for c in terms.cues for m in c.pattern.finditer(text)]
    return _cues_from(unchecked, text, terms)


def test_cue_literal_precheck_changes_no_cue(terms: ReportTerms) -> None:
    # Every match of a cue list holds one of the literals derived from it; so skipping a list whose
    # literals a sentence lacks finds the same cues. Non-ASCII text is never pre-checked.
    texts = [*_mixed_texts(), "ſuspected fracture of L1", "possİble L1 fracture", "no K-edema at L1"]
    for text in texts:
        for cue in terms.cues:
            for m in cue.pattern.finditer(text):
                held = cue.literals is None or any(x in m.group(0).lower() for x in cue.literals)
                assert held or not text.isascii()
        assert _cues(text, terms) == _plain_cues(text, terms), text


def test_folded_cue_patterns_find_what_the_case_insensitive_ones_find(terms: ReportTerms) -> None:
    assert all(cue.folded is not None for cue in terms.cues)  # the shipped terms all fold
    rng = random.Random(5)
    texts = [*_mixed_texts(), *(t.upper() for t in _mixed_texts()), *(t.swapcase() for t in _mixed_texts())]
    texts += ["".join(rng.choice("aBnO tWiEdMa-.\n") for _ in range(200)) for _ in range(200)]
    for text in filter(str.isascii, texts):
        lowered = text.lower()
        for cue in terms.cues:
            assert cue.folded is not None
            folded = [m.span() for m in cue.folded.finditer(lowered)]
            assert folded == [m.span() for m in cue.pattern.finditer(text)], (cue.kind, text)


def test_folded_heading_patterns_find_the_same_sections(terms: ReportTerms) -> None:
    texts = [*_mixed_texts(), *(t.upper() for t in _mixed_texts()), *(t.swapcase() for t in _mixed_texts())]
    for text in filter(str.isascii, texts):
        assert _sections(text, terms, text.lower()) == _sections(text, terms), text


def test_folded_clause_and_context_patterns_match_as_the_case_insensitive_ones(terms: ReportTerms) -> None:
    texts = [*_mixed_texts(), *(t.upper() for t in _mixed_texts()), *(t.swapcase() for t in _mixed_texts())]
    texts += ["acute Back Pain", "KNOWN osteoporosis", "compared WITH the most recent prior", "T12; BUT L1"]
    pairs = [
        (terms.terminator, terms.terminator_folded),
        (terms.not_about_fracture, terms.not_about_fracture_folded),
        (terms.comparison_precursor, terms.comparison_precursor_folded),
    ]
    for text in filter(str.isascii, texts):
        lowered = text.lower()
        for pattern, folded in pairs:
            assert folded is not None
            assert [m.span() for m in folded.finditer(lowered)] == [m.span() for m in pattern.finditer(text)]
            for at in range(0, len(text), 7):  # as used: anchored at a cue's end, searched before it
                got = folded.match(lowered, at)
                want = pattern.match(text, at)
                assert (got and got.span()) == (want and want.span()), (text, at)
                got = folded.search(lowered, max(0, at - 40), at)
                want = pattern.search(text, max(0, at - 40), at)
                assert (got and got.span()) == (want and want.span()), (text, at)


def test_word_gated_context_patterns_match_as_one_lookbehind_per_term(terms: ReportTerms) -> None:
    # The two context checks of a cue put their terms behind one shared word-start gate; built the
    # plain way (each term bounded on its own) they must find exactly the same at every position.
    import re
    from importlib.resources import files

    from cds_service.core.rules.report_text import _alternation

    cues = json.loads((files("cds_service.cards") / "report-terms.json").read_text())["cues"]
    not_about = "[\\s\\-]*(?:" + _alternation(cues["notAboutFracture"]) + ")"
    comparison = "(?:" + _alternation(cues["comparisonPrecursors"]) + r")\s+(?:(?:the|a|an|most|recent)\s+)*$"
    plain = [
        (terms.not_about_fracture, re.compile(not_about, re.I)),
        (terms.comparison_precursor, re.compile(comparison, re.I)),
    ]
    texts = [*_mixed_texts(), "acute back pain", "acute-onset pain", "xpain", "compared with the prior"]
    for text in texts:
        for at in range(len(text) + 1):
            for gated, each in plain:
                got, want = gated.match(text, at), each.match(text, at)
                assert (got and got.span()) == (want and want.span()), (text, at)
                got, want = gated.search(text, max(0, at - 40), at), each.search(text, max(0, at - 40), at)
                assert (got and got.span()) == (want and want.span()), (text, at)


def test_terms_whose_case_matters_are_not_folded() -> None:
    assert _foldable(["no", "(?:is |are )?absent", "vs\\.?", "(?:\\w+ ){0,3}?edema"])
    for term in ["\\S+ fracture", "[A-Z]+ fracture", "(?-i:T2) signal", "(?P<x>new)", "\\W?edema"]:
        assert not _foldable(["no", term]), term


def test_cues_of_sentences_found_together_are_the_cues_of_each_alone(terms: ReportTerms) -> None:
    assert _cue_sets([], terms) == []
    rng = random.Random(9)
    texts = [*_mixed_texts(), "ſuspected fracture of L1", "possİble L1 fracture", "no\x00edema", "\x00"]
    for _ in range(300):
        batch = [rng.choice(texts) for _ in range(rng.randint(1, 6))]
        assert _cue_sets(batch, terms) == [_plain_cues(text, terms) for text in batch], batch


def test_byte_fast_paths_equal_the_regexes() -> None:
    rng = random.Random(7)
    pool = "AZaz09+/=-_ \n\t.\x00\x01\x0b\x0c\x1f\x7f~é\ufffd"
    for _ in range(2000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        assert _control_count(text) == len(_CONTROL.findall(text))
        if text.isascii():
            assert text.encode("ascii").translate(None, _B64_JUNK_BYTES) == _B64_JUNK.sub("", text).encode()
