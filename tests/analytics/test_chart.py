"""analytics/chart: the geometry of the day chart (the template draws it, escaped like any page)."""

from __future__ import annotations

from cds_service.analytics.chart import HEIGHT, PAD, day_chart
from cds_service.analytics.report import Rates


def _day(key: str, cards: int, accepted: int = 0, overridden: int = 0) -> Rates:
    day = Rates(key)
    day.cards, day.accepted, day.overridden = cards, accepted, overridden
    return day


def test_no_days_no_chart() -> None:
    assert day_chart([]) is None


def test_bars_scale_to_the_busiest_day() -> None:
    chart = day_chart([_day("2026-11-01", 4, 1), _day("2026-11-02", 2, 0, 2)])
    assert chart is not None
    assert chart.top == 4
    assert len(chart.bars) == 6
    tallest = max(chart.bars, key=lambda b: b.height)
    assert (tallest.title, round(tallest.y + tallest.height)) == ("2026-11-01: 4 cards", HEIGHT - PAD)
    assert [label.text for label in chart.labels] == ["11-01", "11-02"]


def test_a_long_range_labels_about_ten_days() -> None:
    chart = day_chart([_day(f"2026-10-{d:02d}", 1) for d in range(1, 31)])
    assert chart is not None
    assert 8 <= len(chart.labels) <= 15
