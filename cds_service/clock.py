"""The one clock of the shell: the core never reads it (it is given "today"), the shell asks here."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_today() -> date:
    """Evaluation day: the server clock in UTC (clinical-rules §1)."""
    return datetime.now(UTC).date()


def utc_now() -> datetime:
    """Stored times are naive UTC (the same on SQLite and PostgreSQL)."""
    return datetime.now(UTC).replace(tzinfo=None)
