"""Cards and outcomes per day as an inline SVG, drawn on the server (no script, no build step)."""

from __future__ import annotations

from html import escape

from cds_service.analytics.report import Rates

_W, _H, _PAD = 720, 240, 36
_COLOURS = {"cards": "#9aa9bc", "accepted": "#2e7d32", "overridden": "#c62828"}


def day_chart(days: list[Rates]) -> str:
    """One group of three bars per day (cards, accepted, overridden), scaled to the busiest day."""
    if not days:
        return '<p class="empty">No cards recorded yet.</p>'
    top = max(max(d.cards, d.accepted, d.overridden) for d in days) or 1
    slot = (_W - 2 * _PAD) / len(days)
    bar = max(1.0, slot / 4)
    plot_h = _H - 2 * _PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="Cards and outcomes per day" width="100%">',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#555"/>',
        f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end" font-size="11">{top}</text>',
        f'<text x="{_PAD - 4}" y="{_H - _PAD}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, day in enumerate(days):
        x0 = _PAD + i * slot + (slot - 3 * bar) / 2
        for j, (name, value) in enumerate(
            (("cards", day.cards), ("accepted", day.accepted), ("overridden", day.overridden))
        ):
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{_H - _PAD - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{_COLOURS[name]}"><title>{escape(day.key)}: {value} {name}</title></rect>'
            )
        if len(days) <= 14 or i % max(1, len(days) // 10) == 0:
            parts.append(
                f'<text x="{_PAD + (i + 0.5) * slot:.1f}" y="{_H - _PAD + 14}" text-anchor="middle" '
                f'font-size="10">{escape(day.key[5:])}</text>'
            )
    for k, (name, colour) in enumerate(_COLOURS.items()):
        parts.append(f'<rect x="{_PAD + k * 110}" y="6" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{_PAD + k * 110 + 14}" y="15" font-size="11">{name}</text>')
    parts.append("</svg>")
    return "".join(parts)
