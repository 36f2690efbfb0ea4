"""Radiology report text: read it safely, find the vertebral fractures it asserts (clinical-rules §7).

Pure functions over decoded JSON and strings: no Flask, no I/O beyond the one data file read by
`load_report_terms`, no clock. Every clinical word (fracture words, levels, cues, headings,
modality words) lives in `cards/report-terms.json`; this module only knows how to
compile those lists into regular expressions once and how to apply the §7 scope and precedence
rules. medspacy's ConText was measured first and is far over the budget (docs/report-text.md).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from itertools import accumulate, pairwise
from typing import Any, Literal, cast

import orjson

Classification = Literal["negated", "uncertain", "acute", "chronic", "unqualified"]

# Within one sentence the same level can be named by two fracture phrases ("no new fracture of
# L1; chronic L1 deformity"): the more informative assertion is kept.
_INFORMATIVE: dict[str, int] = {"acute": 4, "chronic": 3, "unqualified": 2, "uncertain": 1, "negated": 0}
QUOTE_LIMIT = 200
ELLIPSIS = "…"
# How far (characters) a level / region may stand from the fracture words it is attached to, and
# how far a structure word ("disc", "transverse process") may stand from a level to claim it.
_LEVEL_REACH = 80
_REGION_REACH = 40
_STRUCTURE_REACH = 30
# Bounded work per report, far above real reports: a "sentence" longer than _SENTENCE_LIMIT
# (hostile or unpunctuated text) is analysed in pieces cut at blanks; at most _SENTENCES_PER_TEXT
# sentences, _PHRASES_PER_SENTENCE fracture phrases per sentence and _ANALYSED_CHARACTERS characters
# of sentences are analysed per text.
_SENTENCE_LIMIT = 400
_SENTENCES_PER_TEXT = 50
_PHRASES_PER_SENTENCE = 8
_ANALYSED_CHARACTERS = 12000


# --------------------------------------------------------------------------------------------
# Terms: the data file compiled once.


@dataclass(frozen=True, slots=True)
class _Segment:
    letter: str
    count: int
    counts: bool
    region: str


@dataclass(frozen=True, slots=True)
class CueList:
    """One cue kind's terms compiled: `pattern` (case-insensitive) for any text; for ASCII text,
    `folded` (the lowercased terms, case-sensitive) applied to the lowercased text finds the same
    matches faster, and a text holding none of `literals` cannot match at all."""

    kind: str
    pattern: re.Pattern[str]
    folded: re.Pattern[str] | None
    literals: tuple[str, ...] | None


@dataclass(frozen=True)
class ReportTerms:
    """Every compiled pattern the engine needs; built by `load_report_terms`, shared read-only."""

    fracture: re.Pattern[str]
    anchor_stems: tuple[str, ...]
    level_expression: re.Pattern[str]
    level_token: re.Pattern[str]
    prefix_segment: Mapping[str, str]
    segments: Mapping[str, _Segment]
    level_order: Mapping[str, int]
    ordered_levels: tuple[str, ...]
    range_words: frozenset[str]
    region: re.Pattern[str]
    region_of_group: Mapping[str, tuple[str, bool]]
    vertebral: re.Pattern[str]
    structure: re.Pattern[str]
    structure_stop: re.Pattern[str]
    adjacent_pair_words: re.Pattern[str]
    mr_levels: frozenset[str]
    mr_follower: re.Pattern[str]
    mr_precursor: re.Pattern[str]
    heading: re.Pattern[str]
    heading_next: re.Pattern[str]
    heading_folded: re.Pattern[str]
    heading_next_folded: re.Pattern[str]
    heading_section: Mapping[str, tuple[str, bool]]
    boundary: re.Pattern[str]
    abbreviation_word: re.Pattern[str]
    abbreviations: frozenset[str]
    abbreviation_suffixes: tuple[str, ...]
    enumerator: re.Pattern[str]
    cues: tuple[CueList, ...]
    not_about_fracture: re.Pattern[str]
    not_about_fracture_folded: re.Pattern[str] | None
    comparison_precursor: re.Pattern[str]
    comparison_precursor_folded: re.Pattern[str] | None
    terminator: re.Pattern[str]
    terminator_folded: re.Pattern[str] | None
    """`*_folded`: the same pattern for lowercased ASCII text, None when its terms do not fold."""
    gap_to_level: re.Pattern[str]
    conjunction: re.Pattern[str]
    modality_words: tuple[tuple[str, re.Pattern[str]], ...]


def _fragment(term: str) -> str:
    """A data term as a regex fragment: ' ?' = optional blank or hyphen, ' ' = blanks or hyphens."""
    return term.replace(" ?", r"[\s\-]*").replace(" ", r"[\s\-]+")


def _bounded(term: str) -> str:
    body = _fragment(term)
    if not re.search(r"[A-Za-z]", term):
        return f"(?:{body})"
    return rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])"


def _longest_first(terms: Iterable[str]) -> list[str]:
    """Longer terms first: at one position the regex takes the first alternative that matches.
    Ties in a fixed order, the same for a term list and its lowercased twin (`folded`)."""
    return sorted(set(terms), key=lambda t: (-len(t), t.lower(), t))


def _terms_for(terms: Iterable[str], folded: bool) -> tuple[list[str], re.RegexFlag]:
    """The terms (lowercased when `folded`) in alternation order, and the flags to match them with.

    `folded`: the lowercased terms, matched case-sensitively, for lowercased ASCII text. The
    regex engine skips an alternative on its first literal character only when matching
    case-sensitively, so this finds the same matches about twice as fast (see `_foldable`)."""
    if folded:
        return _longest_first(t.lower() for t in terms), re.NOFLAG
    return _longest_first(terms), re.IGNORECASE


def _alternation(terms: Iterable[str]) -> str:
    return "|".join(_bounded(t) for t in _longest_first(terms))


def _compile(terms: Iterable[str], *, folded: bool = False) -> re.Pattern[str]:
    listed, flags = _terms_for(terms, folded)
    return re.compile(_alternation(listed), flags)


def _compile_gated(terms: Iterable[str], *, folded: bool = False) -> re.Pattern[str]:
    """`_compile`, with the word terms behind one shared word-start gate instead of a lookbehind
    each (speed). Only when every other term is bare punctuation: a letter-initial term and a
    punctuation term never match at the same position, so the split cannot change a match."""
    listed, flags = _terms_for(terms, folded)
    words = [t for t in listed if re.fullmatch(r"[A-Za-z][A-Za-z ]*", t)]
    others = [t for t in listed if t not in words]
    if not words or not all(re.fullmatch(r"[,;:/&]+", t) for t in others):
        return _compile(listed, folded=folded)
    return re.compile("|".join([_gated_words(words), *(_bounded(t) for t in others)]), flags)


def _compile_words(terms: Iterable[str], *, folded: bool = False) -> re.Pattern[str]:
    """Word terms behind one shared word-start gate: most positions fail at once (speed)."""
    listed, flags = _terms_for(terms, folded)
    return re.compile(_gated_words(listed), flags)


def _gated_words(listed: Sequence[str]) -> str:
    alternatives = "|".join(f"(?:{_fragment(t)})(?![A-Za-z0-9])" for t in listed)
    return rf"(?<![A-Za-z0-9])(?=[A-Za-z])(?:{alternatives})"


def _words_alternation(listed: Sequence[str]) -> str:
    """`_alternation` of terms that all begin with a letter, behind one shared word-start gate
    instead of a lookbehind per term (the same matches: each term needs a letter there anyway),
    so the regex engine tries the terms only where a word starts (speed)."""
    if all(t[:1].isascii() and t[:1].isalpha() for t in listed):
        return _gated_words(listed)
    return _alternation(listed)


# What lowercasing a term could change beyond its letters: an escape or class whose case matters
# (\S, \W, [A-Z]) or an inline group or flag ("(?P<", "(?-i:").
_CASE_SENSITIVE_SYNTAX = re.compile(r"\\[A-Za-z]|\[|\(\?(?![:=!]|<[=!])")
_CASE_FREE_ESCAPES = frozenset({"\\s", "\\w", "\\d", "\\b"})


def _foldable(terms: Iterable[str]) -> bool:
    """Whether the lowercased terms, matched case-sensitively on lowercased ASCII text, find
    exactly what the terms find case-insensitively: only letters change case, and ASCII
    lowercasing keeps every position (the non-ASCII case pairs of IGNORECASE, such as 'ſ' = 's',
    need non-ASCII text, which never takes the folded path)."""
    return all(m.group(0) in _CASE_FREE_ESCAPES for t in terms for m in _CASE_SENSITIVE_SYNTAX.finditer(t))


def _sequence_literals(items: Iterable[tuple[Any, Any]]) -> frozenset[str] | None:
    """Lowercase ASCII strings one of which every match of the parsed sequence contains, or None.

    Every element of a sequence is part of each match, so any one element's set will do: a run of
    literal characters, or a group / alternation / repeat (at least once) of such; the set whose
    shortest string is longest is kept (fewest chance hits). Anything else (classes, optional
    parts, assertions) gives no set and only ends a run: the result can miss a literal, never
    claim one a match does not hold."""
    constants = _sre_constants()
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in items:
        if op is constants.LITERAL and arg < 128:
            run.append(chr(arg).lower())
            continue
        if run:
            candidates.append(frozenset(["".join(run)]))
            run = []
        found = _node_literals(op, arg)
        if found is not None:
            candidates.append(found)
    if run:
        candidates.append(frozenset(["".join(run)]))
    return max(candidates, key=lambda c: min(len(x) for x in c), default=None)


def _node_literals(op: Any, arg: Any) -> frozenset[str] | None:
    constants = _sre_constants()
    if op is constants.SUBPATTERN:
        return _sequence_literals(arg[-1])
    if op is constants.BRANCH:
        union: set[str] = set()
        for branch in arg[1]:
            found = _sequence_literals(branch)
            if found is None:
                return None
            union |= found
        return frozenset(union)
    if op in (constants.MAX_REPEAT, constants.MIN_REPEAT) and arg[0] >= 1:
        return _sequence_literals(arg[2])
    if op is constants.IN and all(o is constants.LITERAL and a < 128 for o, a in arg):
        return frozenset(chr(a).lower() for _, a in arg)
    return None


def _sre_constants() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import sre_constants

    return sre_constants


def _required_literals(terms: Iterable[str]) -> tuple[str, ...] | None:
    """Literals (from the data terms, never typed here) one of which each match of the compiled
    term list contains: a sentence with none of them is not searched (speed). None: some term
    has no such literal, the list is always searched."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import sre_parse

    union: set[str] = set()
    for term in terms:
        found = _sequence_literals(sre_parse.parse(_fragment(term), re.IGNORECASE).data)
        if found is None:
            return None
        union |= found
    # A literal that contains another is redundant: the shorter one is found whenever it is.
    return tuple(sorted(x for x in union if not any(y != x and y in x for y in union)))


def _separator(words: Iterable[str]) -> str:
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        if re.fullmatch(r"[A-Za-z ]+", word):
            parts.append(r"\s+" + _fragment(word) + r"\s+")
        else:
            parts.append(r"\s*" + r"\s*".join(re.escape(p) for p in word.split()) + r"\s*")
    return "(?:" + "|".join(parts) + ")"


def _build(doc: Mapping[str, Any]) -> ReportTerms:
    levels = doc["levels"]
    segments: dict[str, _Segment] = {}
    prefix_segment: dict[str, str] = {}
    ordered: list[str] = []
    for seg in levels["segments"]:
        letter = str(seg["segment"])
        segments[letter] = _Segment(letter, int(seg["count"]), bool(seg["counts"]), str(seg["region"]))
        for prefix in seg["prefixes"]:
            prefix_segment[str(prefix).lower()] = letter
        ordered += [f"{letter}{n}" for n in range(1, int(seg["count"]) + 1)]
    prefixes = "|".join(
        re.escape(p) for seg in levels["segments"] for p in sorted(seg["prefixes"], key=len, reverse=True)
    )
    item = rf"(?<![A-Za-z0-9])(?:{prefixes})[\-\s]?\d{{1,2}}(?![0-9A-Za-z])"
    range_sep = _separator(levels["rangeWords"])
    list_sep = _separator(levels["listWords"])
    expression = rf"(?-i:{item}(?:{range_sep}(?:{item}|\d{{1,2}}(?![0-9A-Za-z%]|\.\d))|{list_sep}{item})*)"
    range_words = frozenset(str(w).lower() for w in levels["rangeWords"])
    range_alt = "|".join(
        re.escape(w) if not w.isalpha() else rf"\b{w}\b" for w in sorted(range_words, key=len, reverse=True)
    )
    level_token = re.compile(
        rf"(?P<lvl>(?P<pfx>{prefixes})[\-\s]?(?P<n>\d{{1,2}}))|(?P<num>\d{{1,2}})|(?P<rng>{range_alt})",
        re.IGNORECASE,
    )

    fracture_doc = doc["fracture"]
    groups = []
    for name in ("withLevel", "implicit", "needsLocation"):
        terms = [str(t) for t in fracture_doc[name]]
        alt = "|".join(
            f"(?:{_fragment(t)})(?![A-Za-z0-9])".replace("{level}", f"(?-i:{item})")
            for t in sorted(terms, key=len, reverse=True)
        )
        groups.append(f"(?P<{name}>{alt})")
    # One shared word-start gate: most positions fail before any alternative is tried (speed).
    fracture = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z])(?:" + "|".join(groups) + ")", re.IGNORECASE)

    region_groups: dict[str, tuple[str, bool]] = {}
    region_parts = []
    for index, entry in enumerate(doc["regions"]["entries"]):
        group = f"r{index}"
        region_groups[group] = (str(entry["region"]), bool(entry["counts"]))
        words = "|".join(
            f"(?:{_fragment(t)})(?![A-Za-z0-9])" for t in sorted(entry["patterns"], key=len, reverse=True)
        )
        region_parts.append(f"(?P<{group}>{words})")
    region = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z])(?:" + "|".join(region_parts) + ")", re.IGNORECASE)

    excl = doc["exclusions"]
    mr = doc["mrSequence"]
    heading_section: dict[str, tuple[str, bool]] = {}
    for entry in doc["sections"]["entries"]:
        for heading in entry["headings"]:
            heading_section[" ".join(str(heading).lower().split())] = (
                str(entry["section"]),
                bool(entry["counts"]),
            )
    heading_alt = "|".join(
        _fragment(re.escape(h).replace(r"\ ", " ")) for h in sorted(heading_section, key=len, reverse=True)
    )
    heading_body = rf"[ \t]*(?P<h>{heading_alt})[ \t]*(?::|$)"
    heading_source = rf"(?:^|(?<=[.!?])[ \t]+){heading_body}"
    heading = re.compile(heading_source, re.IGNORECASE | re.MULTILINE)
    # The same headings after the text's first character, the newline or stop before them consumed:
    # a pattern that starts with a literal lets the regex engine skip to the candidates (speed).
    # A heading match never ends with a newline or a stop, so the consumed character is never
    # part of the previous match and both patterns find the same headings (see `_sections`).
    # A lookahead for the headings' first two letters (from the data) turns most sentence starts
    # away before the heading alternatives are tried one by one (speed); implied by them, so it
    # changes no match.
    openings = sorted({h[:2] if h[:2].isalpha() else h[:1] for h in heading_section})
    gate = "(?=[ \t]*(?:" + "|".join(re.escape(o) for o in openings) + "))"
    heading_next_source = rf"(?:\n|\.[ \t]+|![ \t]+|\?[ \t]+){gate}{heading_body}"
    heading_next = re.compile(heading_next_source, re.IGNORECASE | re.MULTILINE)
    cue_doc = doc["cues"]
    cues = tuple(
        CueList(
            name,
            _compile_words(cue_doc[name]),
            _twin(_compile_words, cue_doc[name]),
            _required_literals(cue_doc[name]),
        )
        for name in (
            "negationPre",
            "negationPost",
            "uncertaintyPre",
            "uncertaintyPost",
            "acute",
            "chronic",
            "chronicAboutFracture",
            "ageIndeterminate",
        )
    )
    modality_words = []
    for entry in doc["modality"]["entries"]:
        abbreviations = "|".join(re.escape(a) for a in sorted(entry["abbreviations"], key=len, reverse=True))
        pattern = rf"(?<![A-Za-z0-9])(?:{abbreviations})(?![A-Za-z0-9])|(?i:{_alternation(entry['words'])})"
        modality_words.append((str(entry["modality"]), re.compile(pattern)))
    return ReportTerms(
        fracture=fracture,
        anchor_stems=tuple(str(a).lower() for a in fracture_doc["anchors"]),
        level_expression=re.compile(expression),
        level_token=level_token,
        prefix_segment=prefix_segment,
        segments=segments,
        level_order={level: i for i, level in enumerate(ordered)},
        ordered_levels=tuple(ordered),
        range_words=range_words,
        region=region,
        region_of_group=region_groups,
        vertebral=_compile_words(doc["regions"]["vertebralWords"]),
        structure=_compile_words(excl["structures"]),
        structure_stop=re.compile(r"[,;.]|\b(?:and|with|or|but|without)\b", re.IGNORECASE),
        adjacent_pair_words=re.compile(
            r"[\s\-]*(?:" + _alternation(excl["adjacentPairLevelWords"]) + ")", re.IGNORECASE
        ),
        mr_levels=frozenset(mr["levels"]),
        mr_follower=re.compile(r"[\s\-/]*(?:" + _alternation(mr["followers"]) + ")", re.IGNORECASE),
        mr_precursor=re.compile("(?:" + _alternation(mr["precursors"]) + r")[\s\-]*$", re.IGNORECASE),
        heading=heading,
        heading_next=heading_next,
        # The headings are lowercased above: for lowercased ASCII text the same patterns matched
        # case-sensitively find the same headings, about twice as fast (as `_compile_words`).
        heading_folded=re.compile(heading_source, re.MULTILINE),
        heading_next_folded=re.compile(heading_next_source, re.MULTILINE),
        heading_section=heading_section,
        # A run of stops, spelt as three literal-initial branches ("[.!?]+" would be the same
        # match) so that the regex engine skips straight to candidate characters (speed).
        boundary=re.compile(
            r"\.[.!?]*[\"')\]]*(?=\s)|![.!?]*[\"')\]]*(?=\s)|\?[.!?]*[\"')\]]*(?=\s)|\n[ \t]*\n"
            r"|\n(?=[ \t]*(?:[-*•·]|\d{1,2}[.)])\s)|\n(?=[ \t]*[A-Z][a-z])|\f"
        ),
        abbreviation_word=re.compile(r"([A-Za-z][A-Za-z.]*)$"),
        abbreviations=frozenset(str(a).lower() for a in doc["sentences"]["abbreviations"]),
        abbreviation_suffixes=tuple(sorted({str(a).lower() for a in doc["sentences"]["abbreviations"]})),
        enumerator=re.compile(r"^(?:\s*(?:[-*•·]|\d{1,2}[.)])\s+)+"),
        cues=cues,
        not_about_fracture=_not_about_fracture(cue_doc["notAboutFracture"]),
        not_about_fracture_folded=_twin(_not_about_fracture, cue_doc["notAboutFracture"]),
        comparison_precursor=_comparison_precursor(cue_doc["comparisonPrecursors"]),
        comparison_precursor_folded=_twin(_comparison_precursor, cue_doc["comparisonPrecursors"]),
        terminator=_compile_gated(cue_doc["terminators"]),
        terminator_folded=_twin(_compile_gated, cue_doc["terminators"]),
        gap_to_level=re.compile(r"^[\s,]*(?:(?:at|of|involving|the|and|or)\s+)*$", re.IGNORECASE),
        conjunction=re.compile(r",|\b(?:and|as well as|also|plus)\b", re.IGNORECASE),
        modality_words=tuple(modality_words),
    )


def _not_about_fracture(terms: Sequence[str], *, folded: bool = False) -> re.Pattern[str]:
    """Words after an acuity cue that say it is about something else ("acute back pain")."""
    listed, flags = _terms_for(terms, folded)
    return re.compile(r"[\s\-]*(?:" + _words_alternation(listed) + ")", flags)


def _comparison_precursor(terms: Sequence[str], *, folded: bool = False) -> re.Pattern[str]:
    """Words before "prior" / "previous" that make it a comparison ("compared with prior")."""
    listed, flags = _terms_for(terms, folded)
    return re.compile("(?:" + _words_alternation(listed) + r")\s+(?:(?:the|a|an|most|recent)\s+)*$", flags)


def _twin(compile_terms: Callable[..., re.Pattern[str]], terms: Sequence[str]) -> re.Pattern[str] | None:
    return compile_terms(terms, folded=True) if _foldable(terms) else None


def load_report_terms(path: Traversable | None = None) -> ReportTerms:
    """Compile the term file (default: the packaged report-terms.json); once at start, never per call."""
    if path is None:
        return _default_terms()
    return _build(orjson.loads(path.read_bytes()))


@lru_cache(maxsize=1)
def _default_terms() -> ReportTerms:
    return _build(orjson.loads((files("cds_service.cards") / "report-terms.json").read_bytes()))


# --------------------------------------------------------------------------------------------
# Text extraction: conclusion + presentedForm, capped, tolerant of any JSON shape.


@dataclass(frozen=True, slots=True)
class ReportText:
    text: str
    unreadable: bool = False
    truncated: bool = False


# Parts of one report (conclusion, each attachment) are joined by a form feed: the section
# heading state restarts at each part.
PART_SEPARATOR = "\n\f\n"
_TEXT_TYPES = frozenset({"text/plain", "text/html"})
_B64_JUNK = re.compile(r"[^A-Za-z0-9+/]")
_HTML_DROP = re.compile(
    r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)", re.IGNORECASE | re.DOTALL
)
_HTML_BLOCK = re.compile(
    r"<\s*/?\s*(?:p|div|li|ul|ol|tr|table|h[1-6]|section|article|header|footer|blockquote|pre|hr|dt|dd)\b[^<>]*>",
    re.IGNORECASE,
)
_HTML_BREAK = re.compile(r"<\s*br\s*/?\s*>|<\s*/?\s*t[dh]\b[^<>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^<>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
# The same two character sets as bytes, for ASCII text: bytes.translate deletes them about ten
# times faster than the regex scans a 4 kB attachment (speed). Built from the patterns themselves.
_B64_JUNK_BYTES = bytes(b for b in range(128) if _B64_JUNK.match(chr(b)))
_CONTROL_BYTES = bytes(b for b in range(128) if _CONTROL.match(chr(b)))


def _control_count(text: str) -> int:
    if text.isascii():
        data = text.encode("ascii")
        return len(data) - len(data.translate(None, _CONTROL_BYTES))
    return len(_CONTROL.findall(text))


def _strip_html(raw: str) -> str:
    text = _HTML_DROP.sub(" ", raw)
    text = _HTML_BLOCK.sub("\n\n", text)
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    return html.unescape(text)


def _media_type(content_type: object) -> tuple[str, str | None]:
    if not isinstance(content_type, str):
        return "", None
    main, *params = content_type.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return main.strip().lower(), charset


def _byte_order(charset: str | None, raw: bytes) -> str | None:
    """UTF-16 / UTF-32 named without a byte order and sent without a BOM (Python's codecs then
    refuse the bytes): the order the zero bytes of mostly-Latin text show, else big-endian as
    RFC 2781 says. Any other charset is returned as given."""
    name = (charset or "").lower().replace("-", "").replace("_", "")
    if name not in ("utf16", "utf32") or raw.startswith(
        (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    ):
        return charset
    width = 2 if name == "utf16" else 4
    little = raw[width - 1 :: width].count(0) > raw[::width].count(0)
    return f"utf-{width * 8}-{'le' if little else 'be'}"


def _decode_data(data: str, charset: str | None, budget: int) -> tuple[str | None, bool]:
    """Base64 text, at most `budget` bytes decoded; (None, _) when it is not readable text."""
    # Cap before decoding: 4 base64 characters carry 3 bytes; a little slack for line breaks.
    wanted = (budget + 3) // 3 * 4
    head = data[: wanted + wanted // 8 + 16]
    swapped = head.replace("-", "+").replace("_", "/")
    if swapped.isascii():
        clean = swapped.encode("ascii").translate(None, _B64_JUNK_BYTES)
    else:
        clean = _B64_JUNK.sub("", swapped).encode("ascii")
    more = len(head) < len(data) or len(clean) > wanted
    clean = clean[:wanted]
    if len(clean) % 4 == 1:
        clean = clean[:-1]
    clean += b"=" * (-len(clean) % 4)
    try:
        raw = base64.b64decode(clean)
    except (binascii.Error, ValueError):
        return None, False
    truncated = more or len(raw) > budget
    raw = raw[:budget]
    wide = (charset or "").lower().replace("-", "").startswith(("utf16", "utf32"))
    if not raw or (b"\x00" in raw and not wide):
        return None, False
    try:
        decoder = codecs.getincrementaldecoder(_byte_order(charset, raw) or "utf-8")(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        text = decoder.decode(raw, final=not truncated)
    except UnicodeError:  # a codec that refuses the bytes whatever `errors` says: unreadable, counted
        return None, False
    if _control_count(text) > max(1, len(text) // 20):
        return None, False
    return text, truncated


def extract_report_text(conclusion: object, presented_form: object, limit: int = 65536) -> ReportText:
    """Readable text of one report: `conclusion`, then text/plain and text/html attachments.

    At most `limit` characters are read in total (base64 is cut before decoding). `unreadable` is
    True when there is no text but there was something to read: a `url`-only attachment (never
    fetched), undecodable or binary data, or a non-text attachment.
    """
    parts: list[str] = []
    budget = max(0, limit)
    truncated = False
    saw_unreadable = False
    if isinstance(conclusion, str) and conclusion[:budget].strip():
        truncated = len(conclusion) > budget
        parts.append(conclusion[:budget])
        budget -= len(parts[-1])
    attachments: Sequence[object]
    if isinstance(presented_form, dict):
        attachments = [presented_form]
    elif isinstance(presented_form, list | tuple):
        attachments = presented_form
    else:
        attachments = []
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        media, charset = _media_type(attachment.get("contentType"))
        data = attachment.get("data")
        if data is None:
            if attachment.get("url") is not None:
                saw_unreadable = True
            continue
        if media not in _TEXT_TYPES and media != "":
            saw_unreadable = True
            continue
        if not isinstance(data, str):
            saw_unreadable = True
            continue
        if budget <= 0:
            truncated = True
            continue
        text, cut = _decode_data(data, charset, budget)
        if text is None:
            saw_unreadable = True
            continue
        truncated = truncated or cut
        text = text[:budget]
        budget -= len(text)
        if media == "text/html" or (media == "" and "<" in text and ">" in text):
            text = _strip_html(text)
        if text.strip():
            parts.append(text)
    return ReportText(
        PART_SEPARATOR.join(parts), unreadable=saw_unreadable and not parts, truncated=truncated
    )


# --------------------------------------------------------------------------------------------
# Text findings.


@dataclass(frozen=True, slots=True)
class TextFinding:
    level: str | None
    region: str | None
    classification: Classification
    quote: str
    section: str | None


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    kind: str


@dataclass(slots=True)
class _LevelRef:
    start: int
    end: int
    levels: tuple[str, ...]


@dataclass(slots=True)
class _Mention:
    start: int
    end: int
    kind: str
    levels: list[_LevelRef]
    regions: list[tuple[int, int, str, bool]]


def _sections(
    text: str, terms: ReportTerms, lowered: str | None = None
) -> tuple[list[int], list[tuple[str | None, bool]], list[int]]:
    """Section starts and states (section, counts) and the cut points of headings and parts.
    `lowered`: the text lowercased, given only when it is ASCII (the folded patterns apply)."""
    heading, heading_next, target = terms.heading, terms.heading_next, text
    if lowered is not None:
        heading, heading_next, target = terms.heading_folded, terms.heading_next_folded, lowered
    starts: list[int] = [0]
    states: list[tuple[str | None, bool]] = [(None, True)]
    cuts: list[int] = []
    marks: list[tuple[int, int, str | None, bool]] = []
    # `heading.finditer(text)`, found faster: a heading at the very start, then `heading_next`
    # from where it ended (a heading elsewhere follows a newline or a stop and blanks).
    first = heading.match(target)
    found = [first] if first else []
    found += heading_next.finditer(target, first.end() if first else 0)
    for m in found:
        name = " ".join(m.group("h").lower().replace("-", " ").split())
        section, counts = terms.heading_section.get(name, (None, True))
        marks.append((m.start("h"), m.end(), section, counts))
    position = text.find("\f")
    while position != -1:
        marks.append((position, position + 1, None, True))
        position = text.find("\f", position + 1)
    for start, end, section, counts in sorted(marks):
        starts.append(start)
        states.append((section, counts))
        cuts += [start, end]
    return starts, states, cuts


class _Sentences:
    """The sentence around a position, found by scanning only near it (speed): the same sentences
    a boundary scan of the whole text gives.

    Why a local scan is exact: a boundary match consumes only stops, closing quotes or brackets
    and blanks (letters and digits appear only in its lookaheads) and the pattern looks nowhere
    behind its start. So no match contains a letter or digit, a scan started at one meets exactly
    the whole-text matches that start after it, and the whole-text matches before it end at or
    before it. tests/core/rules/test_report_text.py compares both on every position.
    """

    _WINDOW = 256

    def __init__(self, text: str, terms: ReportTerms, cuts: list[int]) -> None:
        self.text = text
        self.terms = terms
        self.fixed = sorted({0, len(text), *cuts})
        self.real: tuple[int, int] = (0, 0)
        self.pieces: list[int] = []

    def _is_end(self, m: re.Match[str]) -> bool:
        text, start = self.text, m.start()
        # The word before a period can only be an abbreviation if the text before it ends with
        # one: most periods are ruled out without the regex (speed).
        if text[start] == "." and text[max(0, start - 12) : start].rstrip(".").lower().endswith(
            self.terms.abbreviation_suffixes
        ):
            word = self.terms.abbreviation_word.search(text, max(0, start - 12), start)
            if word and word.group(1).rstrip(".").lower() in self.terms.abbreviations:
                return False
        return True

    def _real_bounds(self, position: int) -> tuple[int, int]:
        """The nearest sentence bounds at or before and after `position`, before long sentences
        are cut in pieces."""
        text, fixed = self.text, self.fixed
        i = bisect_right(fixed, position)
        fixed_before, fixed_after = fixed[i - 1], fixed[i]
        reach = self._WINDOW
        while True:
            scan = max(fixed_before, position - reach)
            while scan > fixed_before and not text[scan].isalnum():
                scan -= 1
            before, after = fixed_before, fixed_after
            for m in self.terms.boundary.finditer(text, scan):
                if m.end() > after:
                    break
                if not self._is_end(m):
                    continue
                if m.end() <= position:
                    before = max(before, m.end())
                else:
                    after = m.end()
                    break
            if before > fixed_before or scan <= fixed_before:
                return before, after
            reach *= 4

    def at(self, position: int) -> tuple[int, int]:
        """[start, end) of the sentence (or piece of a long one) holding `position`."""
        if position >= len(self.text):
            return len(self.text), len(self.text)
        lo, hi = self.real
        if not lo <= position < hi:
            lo, hi = self.real = self._real_bounds(position)
            pieces = [lo]
            a = lo
            while hi - a > _SENTENCE_LIMIT:
                blank = self.text.rfind(" ", a + _SENTENCE_LIMIT // 2, a + _SENTENCE_LIMIT)
                a = blank + 1 if blank != -1 else a + _SENTENCE_LIMIT
                pieces.append(a)
            pieces.append(hi)
            self.pieces = pieces
        j = bisect_right(self.pieces, position) - 1
        return self.pieces[j], self.pieces[j + 1]


def _parse_levels(expr: str, terms: ReportTerms) -> tuple[str, ...]:
    """'T11, T12 and L1' -> (T11, T12, L1); 'T11-L1' -> every level between; 'L4-5' -> (L4, L5)."""
    out: list[str] = []
    letter: str | None = None
    pending_range = False
    for tok in terms.level_token.finditer(expr):
        if tok.group("rng"):
            pending_range = bool(out)
            continue
        if tok.group("lvl"):
            letter = terms.prefix_segment.get(tok.group("pfx").lower())
            number = tok.group("n")
        else:
            number = tok.group("num")
        if letter is None or not number.isdigit():
            continue
        level = f"{letter}{int(number)}"
        if level not in terms.level_order:
            pending_range = False
            continue
        if pending_range and out:
            a, b = terms.level_order[out[-1]], terms.level_order[level]
            lo, hi = min(a, b), max(a, b)
            out += [lv for lv in terms.ordered_levels[lo : hi + 1] if lv not in out]
        elif level not in out:
            out.append(level)
        pending_range = False
    return tuple(out)


def _window_after(s: str, end: int, terms: ReportTerms, limit: int) -> str:
    after = s[end : min(len(s), end + _STRUCTURE_REACH, limit)]
    stop = terms.structure_stop.search(after)
    return after[: stop.start()] if stop else after


def _window_before(s: str, start: int, terms: ReportTerms, limit: int) -> str:
    before = s[max(0, start - _STRUCTURE_REACH, limit) : start]
    last = None
    for last in terms.structure_stop.finditer(before):  # noqa: B007 - the last stop is wanted
        pass
    return before[last.end() :] if last else before


def _level_refs(s: str, terms: ReportTerms, mentions: list[tuple[int, int]]) -> list[_LevelRef]:
    refs: list[_LevelRef] = []
    for m in terms.level_expression.finditer(s):
        levels = _parse_levels(m.group(0), terms)
        if not levels:
            continue
        after_limit = min([ms for ms, _ in mentions if ms >= m.end()] or [len(s)])
        before_limit = max([me for _, me in mentions if me <= m.start()] or [0])
        after = _window_after(s, m.end(), terms, after_limit)
        before = _window_before(s, m.start(), terms, before_limit)
        if terms.structure.search(after) or terms.structure.search(before):
            continue
        if (
            len(levels) == 2
            and abs(terms.level_order[levels[0]] - terms.level_order[levels[1]]) == 1
            and terms.adjacent_pair_words.match(s, m.end())
        ):
            continue  # "T12-L1 level", "L4-5 disc": a disc level, not two vertebrae
        if set(levels) <= terms.mr_levels and (
            terms.mr_follower.match(s, m.end())
            or terms.mr_precursor.search(s, max(0, m.start() - 16), m.start())
        ):
            continue  # "T2 hyperintense", "on T1": MR sequences
        refs.append(_LevelRef(m.start(), m.end(), levels))
    return refs


def _resolve(spans: list[_Span]) -> list[_Span]:
    """Overlapping cues: the longest wins; identical spans of several kinds all stay."""
    kept: list[_Span] = []
    if not spans:
        return kept
    covered = bytearray(max(span.end for span in spans))
    taken: set[tuple[int, int]] = set()
    for span in sorted(spans, key=lambda x: (-(x.end - x.start), x.start)):
        if (span.start, span.end) in taken or not any(covered[span.start : span.end]):
            kept.append(span)
            taken.add((span.start, span.end))
            covered[span.start : span.end] = b"\x01" * (span.end - span.start)
    return sorted(kept, key=lambda x: x.start)


def _cues(s: str, terms: ReportTerms) -> list[_Span]:
    return _cue_sets([s], terms)[0]


def _cue_sets(sentences: Sequence[str], terms: ReportTerms) -> list[list[_Span]]:
    """The standing cues of each sentence, found in one pass over all of them (speed: each cue
    list is checked and scanned once per report instead of once per sentence).

    The sentences are joined by NUL, which no cue term matches: no match crosses a joint, and at
    a joint the word-edge assertions see a non-word character, as at the end of a lone sentence.
    So each sentence gets exactly the matches a scan of it alone gives."""
    if not sentences:
        return []
    joined = "\0".join(sentences)
    offsets = list(accumulate((len(x) + 1 for x in sentences[:-1]), initial=0))
    found: list[list[_Span]] = [[] for _ in sentences]
    # The literal pre-check and the folded patterns compare lowercase ASCII: only sound on ASCII
    # text (under IGNORECASE 'ſ' matches 's', 'İ' matches 'i', and str.lower() does not map them so).
    lowered = joined.lower() if joined.isascii() else None
    for cue in terms.cues:
        pattern, target = cue.pattern, joined
        if lowered is not None:
            if cue.literals is not None and not any(map(lowered.__contains__, cue.literals)):
                continue
            if cue.folded is not None:
                pattern, target = cue.folded, lowered
        for m in pattern.finditer(target):
            start = m.start()
            i = bisect_right(offsets, start) - 1
            found[i].append(_Span(start - offsets[i], m.end() - offsets[i], cue.kind))
    return [
        _cues_from(spans, s, terms, None if lowered is None else lowered[at : at + len(s)])
        for spans, s, at in zip(found, sentences, offsets, strict=True)
    ]


def _cues_from(spans: list[_Span], s: str, terms: ReportTerms, lowered: str | None = None) -> list[_Span]:
    """The cue matches of sentence s that stand: overlaps resolved, cues about something else dropped.
    `lowered`: s lowercased, given only when s is ASCII (the folded patterns then apply)."""
    not_about, comparison, target = terms.not_about_fracture, terms.comparison_precursor, s
    if lowered is not None and terms.not_about_fracture_folded and terms.comparison_precursor_folded:
        not_about, comparison = terms.not_about_fracture_folded, terms.comparison_precursor_folded
        target = lowered
    kept = []
    for span in _resolve(spans):
        if span.kind in ("acute", "chronic", "chronicAboutFracture") and not_about.match(target, span.end):
            continue  # "acute back pain", "known osteoporosis", "prior MRI"
        if span.kind == "chronicAboutFracture" and comparison.search(
            target, max(0, span.start - 40), span.start
        ):
            continue  # "compared with prior", "since prior"
        kept.append(span)
    return kept


def _acuity(kind: str) -> str | None:
    if kind == "acute":
        return "acute"
    if kind in ("chronic", "chronicAboutFracture"):
        return "chronic"
    return None


def _distance(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, max(a[0], b[0]) - min(a[1], b[1]))


def _quote(sentence: str, start: int, end: int, terms: ReportTerms) -> str:
    lead = terms.enumerator.match(sentence)
    offset = lead.end() if lead else 0
    body = sentence[offset:]
    text = " ".join(body.split())
    if len(text) <= QUOTE_LIMIT:
        return text
    m_start = len(" ".join(body[: max(0, start - offset)].split()))
    m_end = m_start + len(" ".join(sentence[start:end].split()))
    room = QUOTE_LIMIT - 2
    begin = max(0, min(m_start - (room - (m_end - m_start)) // 3, len(text) - room))
    stop = min(len(text), begin + room)
    if begin > 0:
        space = text.find(" ", begin, m_start + 1)
        begin = space + 1 if space != -1 else begin
    if stop < len(text):
        space = text.rfind(" ", max(m_end, begin), stop)
        stop = space if space != -1 else stop
    return (ELLIPSIS if begin > 0 else "") + text[begin:stop].strip() + (ELLIPSIS if stop < len(text) else "")


def _classify_clause(
    s: str, a: int, b: int, mentions: list[_Mention], cues: list[_Span], terms: ReportTerms
) -> list[tuple[_Mention, str | None, str | None, bool, str]]:
    """(mention, level, region, counts, classification) for one clause [a, b) of sentence s."""
    clause_cues = [c for c in cues if a <= c.start and c.end <= b]
    ordered = sorted(mentions, key=lambda m: m.start)
    # The part of the clause whose acuity words describe each mention (clinical-rules §7: "the cue
    # next to it"): between two mentions the last conjunction splits post- from pre-modifiers.
    seg_bounds: list[tuple[int, int]] = []
    for i, mention in enumerate(ordered):
        lo = a if i == 0 else seg_bounds[-1][1]
        if i + 1 < len(ordered):
            nxt = ordered[i + 1]
            gap_start, gap_end = mention.end, nxt.start
            split = None
            for conj in terms.conjunction.finditer(s, gap_start, max(gap_start, gap_end)):
                split = conj.start()
            hi = split if split is not None else (gap_start + gap_end) // 2
        else:
            hi = b
        seg_bounds.append((lo, max(lo, hi)))
    results: list[tuple[_Mention, str | None, str | None, bool, str]] = []
    for mention, (lo, hi) in zip(ordered, seg_bounds, strict=True):
        negated = any(
            (c.kind == "negationPre" and c.end <= mention.start)
            or (c.kind == "negationPost" and c.start >= mention.end)
            for c in clause_cues
        )
        uncertain = any(
            (c.kind == "uncertaintyPre" and c.end <= mention.start)
            or (c.kind == "uncertaintyPost" and c.start >= mention.end)
            for c in clause_cues
        )
        blockers = [
            c.start
            for c in clause_cues
            if c.kind in ("negationPre", "uncertaintyPre") and c.start >= mention.end
        ]
        acuity = [
            c
            for c in clause_cues
            if lo <= c.start < hi
            and _acuity(c.kind)
            and not (c.start >= mention.end and any(bp < c.start for bp in blockers))
        ]
        classes = {_acuity(c.kind) for c in acuity}
        targets: list[tuple[str | None, str | None, bool, tuple[int, int]]] = []
        for ref in mention.levels:
            for name in ref.levels:
                segment = terms.segments[name[0]]
                targets.append((name, segment.region, segment.counts, (ref.start, ref.end)))
        if not targets:
            for r_start, r_end, r_name, r_counts in mention.regions:
                targets.append((None, r_name, r_counts, (r_start, r_end)))
        if not targets:
            targets.append((None, None, True, (mention.start, mention.end)))
        for level, region, counts, pos in targets:
            if negated:
                label = "negated"
            elif uncertain:
                label = "uncertain"
            else:
                label = "unqualified"
                # A cue right before a level after the fracture words ("..., not L1", "possibly L1").
                for c in clause_cues:
                    if (
                        c.kind in ("negationPre", "uncertaintyPre")
                        and mention.end <= c.end <= pos[0]
                        and terms.gap_to_level.match(s[c.end : pos[0]])
                    ):
                        label = "negated" if c.kind == "negationPre" else "uncertain"
                if label == "unqualified" and acuity:
                    if len(classes) > 1 and len(targets) > 1:
                        nearest = min(
                            acuity, key=lambda c: (_distance((c.start, c.end), pos), c.start > pos[0])
                        )
                        label = _acuity(nearest.kind) or "unqualified"
                    else:
                        label = "acute" if "acute" in classes else "chronic"
            results.append((mention, level, region, counts, label))
    return results


_SentenceFinding = tuple[str | None, str | None, str, int, int]


def _analyse_sentence(
    s: str, spans: list[tuple[int, int, str]], cues: list[_Span], terms: ReportTerms
) -> list[_SentenceFinding]:
    """(level, region, classification, mention start, mention end) for one sentence, given its
    standing cues (`_cue_sets`)."""
    level_refs = _level_refs(s, terms, [(a, b) for a, b, _ in spans])
    terminator, target = terms.terminator, s
    if terms.terminator_folded is not None and s.isascii():
        terminator, target = terms.terminator_folded, s.lower()
    clause_bounds = [0, *(t.start() for t in terminator.finditer(target)), len(s)]
    # Regions and the vertebral words place only a phrase that has no level: a sentence whose
    # phrases all have one (most) is not scanned for them (speed).
    regions: list[tuple[int, int, str, bool]] | None = None
    has_vertebral = False
    out: list[_SentenceFinding] = []
    for a, b in pairwise(clause_bounds):
        mentions = _clause_mentions(s, a, b, spans, level_refs, terms)
        if not all(m.levels for m in mentions):
            if regions is None:
                regions = _regions(s, terms)
                has_vertebral = terms.vertebral.search(s) is not None
            _attach_regions(mentions, a, b, regions)
            mentions = [
                m for m in mentions if m.kind != "needsLocation" or m.levels or m.regions or has_vertebral
            ]
        if not mentions:
            continue
        for mention, level, region, counts, label in _classify_clause(s, a, b, mentions, cues, terms):
            if counts:
                out.append((level, region, label, mention.start, mention.end))
    return out


def _clause_mentions(
    s: str,
    a: int,
    b: int,
    spans: list[tuple[int, int, str]],
    level_refs: list[_LevelRef],
    terms: ReportTerms,
) -> list[_Mention]:
    """The fracture phrases of one clause with the levels attached to each."""
    refs = [r for r in level_refs if a <= r.start < b]
    mentions: list[_Mention] = []
    for start, end, kind in sorted(spans):
        if not a <= start < b:
            continue
        own = [r for r in refs if r.start < end and r.end > start]
        if kind == "withLevel" and not own:
            continue  # its level was a disc, a process, an MR sequence: not a vertebral fracture
        current = _Mention(start, end, kind, own, [])
        # "compression fracture of L4 with 40% loss of height": two phrases, one fracture.
        if (
            mentions
            and terms.gap_to_level.match(s[mentions[-1].end : start])
            and start - mentions[-1].end <= 12
        ):
            previous = mentions[-1]
            previous.end = max(previous.end, end)
            previous.levels += [r for r in own if r not in previous.levels]
            if kind != "needsLocation":
                previous.kind = "implicit" if previous.kind == "needsLocation" else previous.kind
            continue
        mentions.append(current)
    if not mentions:
        return []
    for ref in refs:
        if any(ref in m.levels for m in mentions):
            continue
        best = min(mentions, key=lambda m: (_distance((ref.start, ref.end), (m.start, m.end)), m.start))
        if _distance((ref.start, ref.end), (best.start, best.end)) <= _LEVEL_REACH:
            best.levels.append(ref)
    return mentions


def _regions(s: str, terms: ReportTerms) -> list[tuple[int, int, str, bool]]:
    """(start, end, region, counts) of the spine regions sentence s names ("lumbar", "thoracolumbar
    junction"), except those that name a structure ("lumbar disc")."""
    regions: list[tuple[int, int, str, bool]] = []
    for m in terms.region.finditer(s):
        if m.lastgroup is None:
            continue
        after = _window_after(s, m.end(), terms, len(s))
        if terms.structure.search(after):
            continue
        name, in_scope = terms.region_of_group[m.lastgroup]
        regions.append((m.start(), m.end(), name, in_scope))
    return regions


def _attach_regions(
    mentions: list[_Mention], a: int, b: int, regions: list[tuple[int, int, str, bool]]
) -> None:
    """Each region of clause [a, b) goes to the nearest phrase within reach."""
    for start, end, region, counts in regions:
        if not a <= start < b:
            continue
        best = min(mentions, key=lambda m: _distance((start, end), (m.start, m.end)))
        if _distance((start, end), (best.start, best.end)) <= _REGION_REACH:
            best.regions.append((start, end, region, counts))


def _positions(text: str, needle: str) -> list[int]:
    found: list[int] = []
    position = text.find(needle)
    while position != -1:
        found.append(position)
        position = text.find(needle, position + 1)
    return found


def find_fracture_mentions(text: str, terms: ReportTerms) -> tuple[TextFinding, ...]:
    """Every vertebral fracture (T1-L5) the text asserts or denies, one per level per sentence.

    Negated ones are returned too (the caller drops them). Sentences under history, indication,
    reason, technique, comparison and exam headings are skipped.
    """
    if not isinstance(text, str) or not text:
        return ()
    lowered = text.lower()
    anchors = [p for a in terms.anchor_stems for p in _positions(lowered, a)]
    if not anchors:
        return ()
    starts, states, cuts = _sections(text, terms, lowered if text.isascii() else None)
    sentences = _Sentences(text, terms, cuts)
    spans: list[tuple[int, int]] = []
    for position in sorted(anchors):
        span = sentences.at(position)
        if not spans or spans[-1] != span:
            spans.append(span)
            if len(spans) > _SENTENCES_PER_TEXT:
                break
    by_sentence: dict[int, tuple[int, list[tuple[int, int, str]]]] = {}
    budget = _ANALYSED_CHARACTERS
    for a, b in spans[:_SENTENCES_PER_TEXT]:
        if not states[bisect_right(starts, a) - 1][1]:
            continue
        budget -= b - a
        if budget < 0:
            break
        for m in terms.fracture.finditer(text, a, b):
            phrases = by_sentence.setdefault(a, (b, []))[1]
            phrases.append((m.start(), m.end(), m.lastgroup or "implicit"))
            if len(phrases) >= _PHRASES_PER_SENTENCE:
                break
    # Reports repeat sentences (the conclusion is usually the impression again): the analysis of a
    # sentence depends on nothing but the sentence and its fracture phrases, so it is done once.
    placed: list[tuple[int, tuple[str, tuple[tuple[int, int, str], ...]]]] = []
    for a in sorted(by_sentence):
        end, group = by_sentence[a]
        b = max(end, max(e for _, e, _ in group))
        placed.append((a, (text[a:b], tuple((s - a, e - a, k) for s, e, k in group))))
    unique = list(dict.fromkeys(key for _, key in placed))
    cue_sets = _cue_sets([sentence for sentence, _ in unique], terms)
    analysed = {
        key: _analyse_sentence(key[0], list(key[1]), cues, terms)
        for key, cues in zip(unique, cue_sets, strict=True)
    }
    findings: list[TextFinding] = []
    seen: set[tuple[str | None, str | None, str, str]] = set()
    for a, sentence_key in placed:
        sentence = sentence_key[0]
        section = states[bisect_right(starts, a) - 1][0]
        results = analysed[sentence_key]
        best: dict[tuple[str | None, str | None], tuple[str, int, int]] = {}
        for level, region, label, m_start, m_end in results:
            key = (level, None if level else region)
            old = best.get(key)
            if old is None or _INFORMATIVE[label] > _INFORMATIVE[old[0]]:
                best[key] = (label, m_start, m_end)
        for (level, region_key), (label, m_start, m_end) in sorted(
            best.items(), key=lambda item: (item[1][1], terms.level_order.get(item[0][0] or "", 99))
        ):
            region = terms.segments[level[0]].region if level else region_key
            quote = _quote(sentence, m_start, m_end, terms)
            dedupe = (level, region, label, quote)
            if dedupe in seen:
                continue
            seen.add(dedupe)
            findings.append(TextFinding(level, region, cast(Classification, label), quote, section))
    return tuple(findings)


def report_modality(code_texts: Iterable[str], terms: ReportTerms) -> str | None:
    """MR / CT / XR / NM from a report's code displays and texts: the first modality named wins."""
    for text in code_texts:
        if not isinstance(text, str):
            continue
        first: tuple[int, str] | None = None
        for modality, pattern in terms.modality_words:
            m = pattern.search(text)
            if m and (first is None or m.start() < first[0]):
                first = (m.start(), modality)
        if first:
            return first[1]
    return None
