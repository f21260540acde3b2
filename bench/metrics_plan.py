"""What `bench/metrics.py` computes: the report window, the metric parameters, and the common
shape every implementation (keepwell, raw DuckDB SQL, pandas) reduces its results to.

The plan mirrors keepwell's defaults (``keepwell.metrics.engagement`` and friends), so the three
implementations answer the same questions:

* 12 calendar months [start, end) in ``timezone``; ``as_of`` (the features snapshot) = end;
* active_customers: DAU = active customer-days / days of the month, WAU/MAU = distinct
  customers active in the 7/28 local days ending on the month's last day;
* usage_frequency: population = active in the 90 days before the month's end, class by active
  days in the last 28 (daily >= 16, weekly >= 4, monthly >= 1, else less than monthly);
* event_retention: monthly first-time cohorts, any event starts and any event returns ("on");
* features: events, active days (last 28 days and the 28 before), events per type in the last
  28 days, days since the last event, for the customers keepwell lists at ``as_of``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

EVENT_METRICS = (
    "active_customers",
    "lifecycle",
    "feature_adoption",
    "usage_frequency",
    "event_retention",
    "features",
)
"""Metrics the raw-SQL and pandas suites recompute and check against keepwell."""


class Stopwatch:
    """Wall seconds and CPU seconds (all threads of this process) of a ``with`` block.

    On a busy shared machine CPU seconds vary less than wall seconds, so both are reported.
    """

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


@dataclass(frozen=True)
class Period:
    """One reporting month: local days [first_day, end_day)."""

    label: str
    first_day: date
    end_day: date

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days


@dataclass(frozen=True)
class Plan:
    """The report window and metric parameters shared by all implementations."""

    start: date
    end: date
    timezone: str
    event_types: tuple[str, ...]
    window_days: int = 28
    lookback_days: int = 90
    wau_days: int = 7
    mau_days: int = 28
    daily_min: int = 16
    weekly_min: int = 4
    monthly_min: int = 1

    @classmethod
    def for_end(
        cls, end: date, *, timezone: str, event_types: tuple[str, ...], months: int = 12
    ) -> Plan:
        """``months`` calendar months ending at ``end`` (the first day after the data)."""
        first = (end - relativedelta(months=months)).replace(day=1)
        return cls(start=first, end=end, timezone=timezone, event_types=tuple(event_types))

    @property
    def as_of(self) -> date:
        return self.end

    def months(self, *, before: int = 0) -> list[Period]:
        """The report's months, preceded by ``before`` earlier ones."""
        day = self.start - relativedelta(months=before)
        out = []
        while day < self.end:
            nxt = day + relativedelta(months=1)
            out.append(Period(f"{day:%Y-%m}", day, nxt))
            day = nxt
        return out

    def utc(self, day: date) -> datetime:
        """Local midnight starting ``day`` as an aware UTC datetime."""
        local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)

    def utc_sql(self, day: date) -> str:
        """:meth:`utc` as a DuckDB TIMESTAMPTZ literal."""
        return f"TIMESTAMPTZ '{self.utc(day):%Y-%m-%d %H:%M:%S}+00'"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        out["event_types"] = list(self.event_types)
        return out


@dataclass(frozen=True)
class Shape:
    """How a metric's result is compared: key columns, value columns, and what a missing row
    means."""

    keys: tuple[str, ...]
    values: tuple[str, ...]
    exact: tuple[str, ...] = ()  # integer/boolean columns compared exactly (others: floats)


def shapes(plan: Plan) -> dict[str, Shape]:
    """The compared columns of every event metric."""
    w = plan.window_days
    counts = (f"events_{w}", f"events_prev_{w}", f"active_days_{w}", f"active_days_prev_{w}")
    types = tuple(f"n{w}_{t}" for t in plan.event_types)
    return {
        "active_customers": Shape(
            ("period",),
            ("days", "dau", "wau", "mau", "stickiness", "period_actives"),
            ("days", "wau", "mau", "period_actives"),
        ),
        "lifecycle": Shape(
            ("period",),
            ("new", "returning", "resurrecting", "dormant", "active"),
            ("new", "returning", "resurrecting", "dormant", "active"),
        ),
        "feature_adoption": Shape(
            ("period", "event"),
            ("adopters", "active_customers", "adoption_rate"),
            ("adopters", "active_customers"),
        ),
        "usage_frequency": Shape(
            ("period",),
            (
                "customers",
                "daily",
                "weekly",
                "monthly",
                "less_than_monthly",
                "median_active_days",
                "forgotten_zone",
            ),
            ("customers", "daily", "weekly", "monthly", "less_than_monthly", "forgotten_zone"),
        ),
        "event_retention": Shape(
            ("cohort", "period_offset"),
            ("cohort_size", "returned", "retention_rate"),
            ("cohort_size", "returned"),
        ),
        "features": Shape(
            ("customer_id",),
            (*counts, "days_since_last_event", *types),
            (*counts, "days_since_last_event", *types),
        ),
    }
