"""FHIR date and dateTime values reduced to calendar dates.

The rules count whole days, so a dateTime keeps only the date it was written with (the clinician's
local day); a partial date ("2026-05", "2026") means its first day.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_WHOLE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?)?)?$")


class UnreadableDateError(ValueError):
    """A date element that holds something other than a (partial) FHIR date or dateTime."""


@functools.lru_cache(maxsize=8192)
def read_date(value: str | None) -> date | None:
    """§1a: a date, dateTime (zone or not: its calendar date) or partial date; None when absent;
    UnreadableDateError when the element is there but is not a date."""
    if value is None:
        return None
    text = value.strip()
    if not _WHOLE.match(text):
        raise UnreadableDateError(text[:10])
    found = to_date(text)
    if found is None:
        raise UnreadableDateError(text[:10])
    return found


def to_date(value: object) -> date | None:
    """A date from whatever fhir.resources or raw JSON holds: date, datetime, or a (partial) string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = _PARTIAL.match(value.strip())
        if not match:
            return None
        year, month, day = match.groups()
        try:
            return date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            return None
    return None


def add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


_UNIT_DAYS = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "weeks": 7}
_UNIT_MONTHS = {"mo": 1, "month": 1, "months": 1, "a": 12, "yr": 12, "year": 12, "years": 12}


def date_at_age(birth: date, value: Decimal | float | int | None, unit: str | None) -> date | None:
    """Birth date plus an Age quantity (UCUM a / mo / wk / d); unknown units give None."""
    if value is None or unit is None or value < 0:
        return None
    unit_key = unit.strip().lower()
    try:
        if unit_key in _UNIT_DAYS:
            return birth + timedelta(days=int(Decimal(value) * _UNIT_DAYS[unit_key]))
        if unit_key in _UNIT_MONTHS:
            return add_months(birth, int(Decimal(value) * _UNIT_MONTHS[unit_key]))
    except (OverflowError, ValueError, ArithmeticError):
        return None
    return None
