"""Reporting periods: calendar-aligned days, ISO weeks, months and quarters in a time zone.

A period is the half-open interval [start, end). Boundaries are computed in the business's
reporting time zone (so "March" means March in Berlin for a Berlin business) and handed to
queries as naive UTC timestamps, which is how :mod:`keepwell.metrics.sources` stores time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from dateutil.relativedelta import relativedelta

from keepwell.errors import InvalidInput


class Period(enum.StrEnum):
    """Length of a reporting period."""

    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"


STEP = {
    Period.day: relativedelta(days=1),
    Period.week: relativedelta(weeks=1),
    Period.month: relativedelta(months=1),
    Period.quarter: relativedelta(months=3),
}


def floor(day: date, period: Period) -> date:
    """The first day of the period containing ``day`` (weeks start on Monday)."""
    if period is Period.day:
        return day
    if period is Period.week:
        return day - timedelta(days=day.weekday())
    if period is Period.month:
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def label(day: date, period: Period) -> str:
    """A short human label: ``2026-03-01``, ``2026-W09``, ``2026-03``, ``2026-Q1``."""
    if period is Period.day:
        return day.isoformat()
    if period is Period.week:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.month:
        return f"{day:%Y-%m}"
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def to_utc_naive(day: date, tz: str) -> datetime:
    """Local midnight of ``day`` in ``tz`` as a naive UTC datetime."""
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class PeriodSpan:
    """One reporting period: [start, end) as naive UTC plus its local first day and label."""

    label: str
    first_day: date
    start: datetime
    end: datetime


def grid(start: date, end: date, period: Period | str, *, tz: str = "UTC") -> list[PeriodSpan]:
    """The periods covering [start, end): ``start`` is floored to its period, ``end`` exclusive.

    >>> [p.label for p in grid(date(2026, 1, 15), date(2026, 4, 1), "month")]
    ['2026-01', '2026-02', '2026-03']
    """
    try:
        period = Period(period)
    except ValueError:
        raise InvalidInput(
            f"unknown period {period!r}", field="period", expected="day, week, month or quarter"
        ) from None
    if end <= start:
        raise InvalidInput(
            f"the range is empty: from {start} to {end}", field="to", expected="a date after --from"
        )
    spans = []
    day = floor(start, period)
    while day < end:
        nxt = day + STEP[period]
        spans.append(
            PeriodSpan(label(day, period), day, to_utc_naive(day, tz), to_utc_naive(nxt, tz))
        )
        day = nxt
    return spans


def grid_frame(spans: list[PeriodSpan]) -> pd.DataFrame:
    """The periods as a DataFrame (``period``, ``period_start``, ``period_end``) for a memtable."""
    return pd.DataFrame(
        {
            "period": [s.label for s in spans],
            "period_start": pd.to_datetime([s.start for s in spans]).astype("datetime64[us]"),
            "period_end": pd.to_datetime([s.end for s in spans]).astype("datetime64[us]"),
        }
    )
