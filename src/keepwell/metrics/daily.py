"""Daily per-customer activity, read from the rollup when it fits, else from raw events.

Engagement and feature metrics only need, per customer (or user) and *local* day: how many
events, their value sum and a count per event type. The daily rollup
(:mod:`keepwell.metrics.rollup`) stores exactly that; :func:`daily_activity` reads it when
:func:`reads_rollup` says its grain suffices and otherwise aggregates raw events into the same
shape, bucketing by local day. Both paths give identical numbers.

Definitions shared by every engagement metric:

* An **event type** is the event name lower-cased with every character outside ``a-z0-9``
  replaced by ``_`` (:func:`event_slug`). Names that differ only in case or punctuation
  ("Page View", "page-view", "page_view") are one event type, on both paths.
* A customer is **active on a day** when it has at least one event that local day.
* **Duplicate events** (same customer, name and time) count as separate events but a day is
  active once. **Events before signup** (or before the first subscription) count like any other.
  Metrics decide what to do with them; nothing is deduplicated or dropped here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import ibis
import ibis.expr.types as ir

from keepwell.errors import InvalidInput
from keepwell.metrics.localtime import local_day
from keepwell.metrics.periods import to_utc_naive
from keepwell.metrics.sources import Sources

COUNT_PREFIX = "n_"
VALUE_PREFIX = "v_"
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def event_slug(name: str) -> str:
    """The event type of an event name.

    >>> event_slug("Report Created!")
    'report_created_'
    """
    return _NOT_ALNUM.sub("_", name.lower())


def event_slug_expr(name: ir.StringValue) -> ir.StringValue:
    """:func:`event_slug` as a query expression."""
    return name.lower().re_replace(r"[^a-z0-9]", "_")


def rollup_timezone(src: Sources) -> str:
    """The zone the rollup's days are counted in (``src.extra['rollup_timezone']``, or the
    reporting zone when not stated)."""
    return src.extra.get("rollup_timezone", src.timezone)


def reads_rollup(src: Sources, *, unit: str = "customer") -> bool:
    """Whether metrics can answer from the rollup: there is one, its days are local days of
    the reporting zone, and the question is about customers (not users)."""
    return src.has_rollup and unit == "customer" and rollup_timezone(src) == src.timezone


def reads_months(src: Sources) -> bool:
    """Whether metrics can also answer from the rollup's month summaries
    (:mod:`keepwell.metrics.rollup_months`): they read the rollup and the summaries match it."""
    return reads_rollup(src) and "rollup_months" in src.tables


def rollup_event_types(src: Sources) -> list[str]:
    """Event types with a count column in the rollup."""
    return sorted(c[len(COUNT_PREFIX) :] for c in src.rollup.columns if c.startswith(COUNT_PREFIX))


def event_types(src: Sources) -> list[str]:
    """Every event type, sorted: from the rollup's columns, else from the raw events.

    Without a rollup this runs one small ``SELECT DISTINCT`` (the only query executed while a
    metric is being built): wide tables need their column names up front.
    """
    if reads_rollup(src):
        return rollup_event_types(src)
    e = src.events
    names = e.select(slug=event_slug_expr(e.event)).distinct().execute()["slug"]
    return sorted(str(n) for n in names)


def _raw_events(src: Sources, first_day: date | None, end_day: date) -> ir.Table:
    e = src.events
    preds = [e.occurred_at < to_utc_naive(end_day, src.timezone)]
    if first_day is not None:
        preds.append(e.occurred_at >= to_utc_naive(first_day, src.timezone))
    e = e.filter(*preds)
    return e.mutate(day=local_day(e.occurred_at, tz=src.timezone, backend=src.backend))


def daily_activity(
    src: Sources,
    *,
    first_day: date | None,
    end_day: date,
    event_types: Sequence[str] = (),
    unit: str = "customer",
) -> ir.Table:
    """Activity per customer (and user, for ``unit="user"``) and local day in [first_day, end_day).

    Columns: customer_id, [user_id,] day (date), events (int64), value_sum (float64), and
    ``n_<type>`` (int64) for each of ``event_types``. ``first_day=None`` means all history.
    Read from the rollup, a (customer, day) may appear on several rows (partial aggregates):
    consumers sum counts and count *distinct* days, which is exact either way.
    Users: events without a user_id are not user activity and are left out.
    """
    if unit not in ("customer", "user"):
        raise InvalidInput(f"unknown unit {unit!r}", field="unit", expected="customer or user")
    if reads_rollup(src, unit=unit):
        r = src.rollup
        preds = [r.day < end_day]
        if first_day is not None:
            preds.append(r.day >= first_day)
        r = r.filter(*preds)
        have = set(r.columns)
        counts = {
            f"{COUNT_PREFIX}{t}": (
                r[f"{COUNT_PREFIX}{t}"].fill_null(0).cast("int64")
                if f"{COUNT_PREFIX}{t}" in have
                else ibis.literal(0, type="int64")
            )
            for t in event_types
        }
        return r.select(
            "customer_id",
            day=r.day.cast("date"),
            events=r.events.cast("int64"),
            value_sum=r.value_sum.fill_null(0.0).cast("float64"),
            **counts,
        )
    e = _raw_events(src, first_day, end_day)
    keys = ["customer_id", "day"]
    if unit == "user":
        e = e.filter(e.user_id.notnull())
        keys = ["customer_id", "user_id", "day"]
    slug = event_slug_expr(e.event)
    counts = {
        f"{COUNT_PREFIX}{t}": ibis.ifelse(slug == t, 1, 0).sum().cast("int64") for t in event_types
    }
    return e.group_by(keys).aggregate(
        events=e.count().cast("int64"),
        value_sum=e.value.sum().fill_null(0.0).cast("float64"),
        **counts,
    )


def one_row_per_day(src: Sources, d: ir.Table, *, unit: str = "customer") -> bool:
    """Whether ``d`` (from :func:`daily_activity`) already holds one row per (customer, day):
    read from a rollup without partial rows. Then consumers may skip a DISTINCT or GROUP BY
    over (customer, day), the costliest step of most engagement metrics."""
    return (
        unit == "customer" and reads_rollup(src) and bool(src.extra.get("rollup_one_row_per_day"))
    )


def per_customer_day(src: Sources, d: ir.Table) -> ir.Table:
    """``d`` (customer_id, day, numeric columns) with one row per (customer, day), summed."""
    if one_row_per_day(src, d):
        return d
    numeric = [c for c in d.columns if c not in ("customer_id", "day")]
    return d.group_by(["customer_id", "day"]).aggregate(**{c: d[c].sum() for c in numeric})


def first_active_day(src: Sources, *, end_day: date) -> ir.Table:
    """Each customer's first local day with an event before ``end_day``: customer_id, first_day."""
    if reads_rollup(src):
        r = src.rollup
        r = r.filter(r.day < end_day)
        return r.group_by("customer_id").aggregate(first_day=r.day.min().cast("date"))
    e = src.events
    e = e.filter(e.occurred_at < to_utc_naive(end_day, src.timezone))
    first = e.group_by("customer_id").aggregate(first_at=e.occurred_at.min())
    return first.select(
        "customer_id", first_day=local_day(first.first_at, tz=src.timezone, backend=src.backend)
    )
