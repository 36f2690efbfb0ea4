"""HTML for people: every page is a Jinja template (autoescaped, found in its blueprint's
`templates/` folder) answered by `html_page`; markdown (rationale, card details in the preview) is
rendered by `render_markdown`.

Raw HTML in markdown is never passed through, and markdown-it refuses `javascript:`-style links:
card details carry record text, so rendering them must not open a door for script.
"""

from __future__ import annotations

from typing import Any

from flask import Response, render_template
from markdown_it import MarkdownIt

# GitHub-flavoured enough for card details and the rationale: tables and strikethrough on top of CommonMark.
_RENDERER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    html: str = _RENDERER.render(text)
    return html


def html_page(template: str, **context: Any) -> Response:
    return Response(render_template(template, **context), mimetype="text/html")
