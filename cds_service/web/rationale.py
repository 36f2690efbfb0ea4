"""GET /rationale, the page every card's source.url points to: docs/clinical-rules.md (shipped as
cds_service.docs) with the numbers of the running configuration, so page and documentation cannot drift.

Every configurable number in the document is written as its default followed by a marker,
`60<!--cfg:recent_days-->`: GitHub shows "60" (the comment is invisible), the page shows the value
this service runs with. An unknown marker is a packaging mistake and stops the start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable

from flask import Blueprint, Response
from markupsafe import Markup

from cds_service.config.settings import Settings
from cds_service.core.terminology import Terminology
from cds_service.runtime import runtime
from cds_service.web.html import html_page, render_markdown

MARKER = re.compile(r"(\d+)<!--cfg:([a-z_:-]+)-->")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_LOCAL_LINK = re.compile(r"\[([^\]]+)\]\((?![a-z]+:)[^)]*\)")
"""Links between documents of the repository (`[API guide](api.md)`): plain text on the page."""


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


def rationale_body(settings: Settings, terminology: Terminology, folder: Traversable | None = None) -> Markup:
    """The page's body as HTML, built once at start (the route wraps it in its template)."""
    markdown = substitute(clinical_rules_markdown(folder), configured_numbers(settings, terminology))
    # Comments are for the repository view only; the renderer shows raw HTML as text.
    markdown = _LOCAL_LINK.sub(r"\1", _COMMENT.sub("", markdown)) + _site_section(terminology)
    return Markup(render_markdown(markdown))


bp = Blueprint("rationale", __name__, template_folder="templates")


@bp.get("/rationale")
def rationale() -> Response:
    return html_page("rationale.html", body=runtime().rationale_body)
