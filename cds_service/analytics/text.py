"""`spine-cds report`: the analytics numbers as a plain-text table."""

from __future__ import annotations

from cds_service.analytics.report import Rates, Report


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _rates_table(title: str, rows: list[Rates], total: Rates | None = None) -> list[str]:
    width = max([len(title), *(len(r.key) for r in rows), 3])
    header = f"{title:<{width}}  {'cards':>6} {'feedback':>8} {'accepted':>8} {'overridden':>10} "
    lines = [header + f"{'accept%':>8} {'override%':>9}"]
    for row in [*rows, *([total] if total else [])]:
        lines.append(
            f"{row.key:<{width}}  {row.cards:>6} {row.feedback:>8} {row.accepted:>8} {row.overridden:>10} "
            f"{percent(row.acceptance_rate):>8} {percent(row.override_rate):>9}"
        )
    return lines


def render_text(report: Report) -> str:
    scope = f"since {report.since.isoformat()}" if report.since else "all time"
    lines = [f"Vertebral augmentation CDS: cards and feedback ({scope})", ""]
    lines += _rates_table("service", report.services, report.total)
    lines += ["", *_rates_table("recommendation", report.recommendations), ""]
    lines.append("override reasons (most frequent first)")
    lines += [f"  {r.count:>6}  {r.code}  {r.display}".rstrip() for r in report.reasons] or ["  (none)"]
    lines += ["", f"{'day':<10}  {'cards':>6} {'accepted':>8} {'overridden':>10}"]
    lines += [f"{d.key:<10}  {d.cards:>6} {d.accepted:>8} {d.overridden:>10}" for d in report.days]
    return "\n".join(lines) + "\n"
