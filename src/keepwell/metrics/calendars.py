"""Small in-query calendars: local reporting periods, day -> period maps and trailing windows.

Engagement metrics work on *local days* (the reporting time zone). These helpers turn a
reporting range into tiny memtables that metrics join on a date (an equi-join, cheap on every
backend) instead of range-joining millions of rows.

As-of convention: a value "as of day D" is taken at local midnight at the start of D and uses
the ``n`` days before it, D-n .. D-1. For a period that is the first day after it, so "as of
the end of March" uses days up to and including March 31.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from keepwell.metrics import periods as P


@dataclass(frozen=True)
class LocalPeriod:
    """A reporting period: local days [first_day, end_day) and the same bounds as naive UTC."""

    index: int
    label: str
    first_day: date
    end_day: date
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days


def local_periods(
    start: date, end: date, period: P.Period | str, *, tz: str, before: int = 0
) -> list[LocalPeriod]:
    """The periods covering [start, end) (see :func:`periods.grid`), plus ``before`` earlier ones.

    Indexes count from 0 for the first period of the report (earlier ones are negative).
    """
    period = P.Period(period)
    spans = P.grid(start, end, period, tz=tz)
    first = spans[0].first_day - P.STEP[period] * before
    if before:
        spans = P.grid(first, end, period, tz=tz)
    out = []
    for i, span in enumerate(spans):
        nxt = span.first_day + P.STEP[period]
        out.append(LocalPeriod(i - before, span.label, span.first_day, nxt, span.start, span.end))
    return out


def periods_table(periods: Sequence[LocalPeriod]) -> ir.Table:
    """period, period_start, period_end (naive UTC), first_day, end_day, days, idx."""
    df = pd.DataFrame(
        {
            "period": [p.label for p in periods],
            "period_start": pd.to_datetime([p.start for p in periods]).astype("datetime64[us]"),
            "period_end": pd.to_datetime([p.end for p in periods]).astype("datetime64[us]"),
            "first_day": [p.first_day for p in periods],
            "end_day": [p.end_day for p in periods],
            "days": [p.days for p in periods],
            "idx": [p.index for p in periods],
        }
    )
    return ibis.memtable(
        df,
        schema={
            "period": "string",
            "period_start": "timestamp",
            "period_end": "timestamp",
            "first_day": "date",
            "end_day": "date",
            "days": "int64",
            "idx": "int64",
        },
    )


def _days(first: date, end: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((end - first).days)]


def day_periods(periods: Sequence[LocalPeriod]) -> ir.Table:
    """One row per local day of the periods: day, period, idx."""
    rows = [(d, p.label, p.index) for p in periods for d in _days(p.first_day, p.end_day)]
    df = pd.DataFrame(rows, columns=["day", "period", "idx"])
    return ibis.memtable(df, schema={"day": "date", "period": "string", "idx": "int64"})


def period_days_in_windows(periods: Sequence[LocalPeriod], lengths: Sequence[int]) -> ir.Table:
    """One row per local day of the periods with, per window length ``n``, ``in_<n>`` = 1 when
    the day is among the period's last ``n`` days, else 0. Columns: day, period, idx,
    in_<n>..."""
    flags = [f"in_{n}" for n in lengths]
    rows = [
        (d, p.label, p.index, *[int(d >= p.end_day - timedelta(days=n)) for n in lengths])
        for p in periods
        for d in _days(p.first_day, p.end_day)
    ]
    df = pd.DataFrame(rows, columns=["day", "period", "idx", *flags])
    schema = {"day": "date", "period": "string", "idx": "int64", **dict.fromkeys(flags, "int64")}
    return ibis.memtable(df, schema=schema)


def trailing_days(anchors: Sequence[tuple[str, date]], lengths: Sequence[int]) -> ir.Table:
    """Days of the trailing windows ending before each anchor day.

    ``anchors`` are (key, as_of day) pairs; ``lengths`` window lengths in days (the longest
    decides which days are listed). Columns: key, day, and ``in_<n>`` (1 when the day is among
    the ``n`` days before the anchor, else 0) for each length.
    """
    lengths = sorted(set(lengths))  # a window listed twice is one column
    longest = max(lengths)
    rows = []
    for key, as_of in anchors:
        for back in range(1, longest + 1):
            rows.append((key, as_of - timedelta(days=back), *[int(back <= n) for n in lengths]))
    names = ["key", "day", *[f"in_{n}" for n in lengths]]
    df = pd.DataFrame(rows, columns=names)
    schema = {"key": "string", "day": "date", **{f"in_{n}": "int64" for n in lengths}}
    return ibis.memtable(df, schema=schema)
