"""Cards and outcomes per day as an inline SVG, drawn on the server (no script, no build step):
this module computes the geometry, `templates/_day_chart.svg` draws it (autoescaped like any page)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cds_service.analytics.report import Rates

WIDTH, HEIGHT, PAD = 720, 240, 36
COLOURS = {"cards": "#9aa9bc", "accepted": "#2e7d32", "overridden": "#c62828"}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    text: str


@dataclass(frozen=True)
class DayChart:
    top: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[DayLabel] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    pad: int = PAD
    legend: tuple[tuple[str, str], ...] = tuple(COLOURS.items())


def day_chart(days: list[Rates]) -> DayChart | None:
    """One group of three bars per day (cards, accepted, overridden), scaled to the busiest day;
    None when there is nothing to draw."""
    if not days:
        return None
    top = max(max(d.cards, d.accepted, d.overridden) for d in days) or 1
    slot = (WIDTH - 2 * PAD) / len(days)
    bar = max(1.0, slot / 4)
    plot_h = HEIGHT - 2 * PAD
    chart = DayChart(top)
    for i, day in enumerate(days):
        x0 = PAD + i * slot + (slot - 3 * bar) / 2
        for j, (name, value) in enumerate(
            (("cards", day.cards), ("accepted", day.accepted), ("overridden", day.overridden))
        ):
            h = plot_h * value / top
            chart.bars.append(
                Bar(x0 + j * bar, HEIGHT - PAD - h, bar, h, COLOURS[name], f"{day.key}: {value} {name}")
            )
        if len(days) <= 14 or i % max(1, len(days) // 10) == 0:
            chart.labels.append(DayLabel(PAD + (i + 0.5) * slot, day.key[5:]))
    return chart
