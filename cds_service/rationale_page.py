"""The /rationale page: docs/clinical-rules.md (shipped as cds_service.docs) with the numbers of
the running configuration, so the page and the documentation cannot drift.

Every configurable number in the document is written as its default followed by a marker,
`60<!--cfg:recent_days-->`: GitHub shows "60" (the comment is invisible), the page shows the value
this service runs with. An unknown marker is a packaging mistake and stops the start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable

from cds_service.core.terminology import Terminology
from cds_service.markdown_html import render_markdown
from cds_service.settings import Settings

MARKER = re.compile(r"(\d+)<!--cfg:([a-z_:-]+)-->")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_LOCAL_LINK = re.compile(r"\[([^\]]+)\]\((?![a-z]+:)[^)]*\)")
"""Links between documents of the repository (`[API guide](api.md)`): plain text on the page."""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vertebral augmentation CDS: how the rule decides</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}}
</style>
</head><body>{body}</body></html>"""


def clinical_rules_markdown(folder: Traversable | None = None) -> str:
    root = folder if folder is not None else files("cds_service.docs")
    return (root / "clinical-rules.md").read_text(encoding="utf-8")


def configured_numbers(settings: Settings, terminology: Terminology) -> dict[str, int]:
    """Every number the document may state, as this process runs it (settings, then data files)."""
    params = terminology.parameters
    numbers = {
        "recent_days": settings.recent_days,
        "future_tolerance_days": params.future_tolerance_days,
        "imaging_lookback_days": params.imaging_lookback_days,
        "multiple_levels_more_than": params.multiple_levels_more_than,
    }
    for valueset in terminology.valuesets.values():
        rule = valueset.contraindication
        if rule is not None and rule.stale_after_days is not None:
            numbers[f"stale:{rule.code}"] = rule.stale_after_days
    return numbers


def substitute(markdown: str, numbers: Mapping[str, int]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in numbers:
            raise ValueError(f"clinical-rules.md: unknown configured number {name!r}")
        return str(numbers[name])

    return MARKER.sub(one, markdown)


def _site_section(terminology: Terminology) -> str:
    if not terminology.site_files:
        return ""
    rows = [
        "",
        "## Site codes in use here",
        "",
        "This installation adds its own codes to the shipped value sets (`CDS_VALUESET_DIR`):",
        "",
        "| file | value set | added | source |",
        "| --- | --- | --- | --- |",
    ]
    for site in terminology.site_files:
        added = f"{site.codes} codes, {site.patterns} patterns, {site.texts} text patterns"
        source = "; ".join(site.sources).replace("|", "/")
        rows.append(f"| `{site.file}` | `{site.valueset_id}` | {added} | {source} |")
    return "\n".join(rows) + "\n"


def render_rationale(settings: Settings, terminology: Terminology, folder: Traversable | None = None) -> str:
    """The page's HTML, built once at start."""
    markdown = substitute(clinical_rules_markdown(folder), configured_numbers(settings, terminology))
    # Comments are for the repository view only; the renderer shows raw HTML as text.
    markdown = _LOCAL_LINK.sub(r"\1", _COMMENT.sub("", markdown)) + _site_section(terminology)
    return _PAGE.format(body=render_markdown(markdown))
