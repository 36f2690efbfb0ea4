"""The numbers people who govern CDS look at: acceptance and override rates, reasons, cards per day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from cds_service.store.database import Database
from cds_service.store.tables import feedback, issued_cards

NO_REASON = "(no reason given)"
_VALID_FEEDBACK = feedback.join(
    issued_cards,
    (feedback.c.card_uuid == issued_cards.c.card_uuid) & (feedback.c.service_id == issued_cards.c.service_id),
)
"""Only feedback on a card this service issued counts (rows stored before feedback was checked
against issued cards may not be)."""


@dataclass
class Rates:
    """Cards issued and feedback received for one service, recommendation or day."""

    key: str
    cards: int = 0
    accepted: int = 0
    overridden: int = 0

    @property
    def feedback(self) -> int:
        return self.accepted + self.overridden

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.feedback if self.feedback else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None


@dataclass(frozen=True)
class Reason:
    code: str
    display: str
    count: int


@dataclass
class Report:
    since: date | None
    services: list[Rates] = field(default_factory=list)
    recommendations: list[Rates] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    days: list[Rates] = field(default_factory=list)

    @property
    def total(self) -> Rates:
        rates = Rates("all")
        for row in self.services:
            rates.cards += row.cards
            rates.accepted += row.accepted
            rates.overridden += row.overridden
        return rates


def _table(rows: dict[str, Rates]) -> list[Rates]:
    return [rows[key] for key in sorted(rows)]


def _count(found: dict[str, Rates], key: str, outcome: str, n: int) -> None:
    rates = found.setdefault(key, Rates(key))
    if outcome == "accepted":
        rates.accepted += n
    else:
        rates.overridden += n


def _day(value: object) -> str:
    """SQLite's date() gives text, PostgreSQL's a date: both become YYYY-MM-DD."""
    return value.isoformat() if isinstance(value, date) else str(value)


def build_report(database: Database, since: date | None = None) -> Report:
    start = datetime.combine(since, time.min) if since else datetime.min
    report = Report(since)
    with database.engine.connect() as connection:
        report.services = _rates_by(connection, start, issued_cards.c.service_id, feedback.c.service_id)
        report.recommendations = _rates_by(
            connection, start, issued_cards.c.recommendation, issued_cards.c.recommendation
        )
        report.reasons = _reasons(connection, start)
        report.days = _rates_by(
            connection,
            start,
            func.date(issued_cards.c.issued_at),
            func.date(feedback.c.outcome_timestamp),
            _day,
        )
    return report


def _rates_by(
    connection: Connection,
    start: datetime,
    card_key: ColumnElement[Any],
    feedback_key: ColumnElement[Any],
    name: Callable[[Any], str] = str,
) -> list[Rates]:
    """Cards and feedback outcomes counted per key: a service id, the card's recommendation
    (feedback rows reach it through the issued card they name), or a day (`name` spells it)."""
    found: dict[str, Rates] = {}
    cards = select(card_key, func.count()).where(issued_cards.c.issued_at >= start).group_by(card_key)
    for key, n in connection.execute(cards):
        found.setdefault(name(key), Rates(name(key))).cards = n
    outcomes = (
        select(feedback_key, feedback.c.outcome, func.count())
        .select_from(_VALID_FEEDBACK)
        .where(feedback.c.outcome_timestamp >= start)
        .group_by(feedback_key, feedback.c.outcome)
    )
    for key, outcome, n in connection.execute(outcomes):
        _count(found, name(key), outcome, n)
    return _table(found)


def _reasons(connection: Connection, start: datetime) -> list[Reason]:
    code = func.coalesce(feedback.c.override_code, NO_REASON)
    query = (
        select(code, func.max(feedback.c.override_display), func.count())
        .select_from(_VALID_FEEDBACK)
        .where(feedback.c.outcome == "overridden", feedback.c.outcome_timestamp >= start)
        .group_by(code)
    )
    reasons = [Reason(c, display or "", n) for c, display, n in connection.execute(query)]
    return sorted(reasons, key=lambda r: (-r.count, r.code))
