"""Markdown to HTML for pages this service shows people (rationale, preview of card details).

Raw HTML in the source is never passed through, and markdown-it refuses `javascript:`-style links:
card details carry record text, so rendering them must not open a door for script.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

# GitHub-flavoured enough for card details and the rationale: tables and strikethrough on top of CommonMark.
_RENDERER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    html: str = _RENDERER.render(text)
    return html
