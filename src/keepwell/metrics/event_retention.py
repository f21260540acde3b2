"""Event retention like product-analytics tools: start event -> return event. PRODUCT.md section 1.

Definitions (``docs/metrics/event_retention.md``):

* **Periods** are calendar-aligned days, ISO weeks (Monday), months or quarters in the reporting
  time zone ``src.timezone``; an event belongs to the local period containing it (an event at
  23:30 UTC on a Sunday is on Monday in Berlin, so in the next week). ``start`` is floored to
  its period; only periods that are **complete** by ``end`` (exclusive) are analysed.
* An **event type** is the event name lower-cased with every character outside ``a-z0-9``
  replaced by ``_`` (:func:`~keepwell.metrics.daily.event_slug`: "Page View", "page-view" and
  "page_view" are one type, as in the rollup's ``n_<type>`` columns). ``None`` = any event.
* **Unit**: customers (``unit="customer"``) or users (``unit="user"``: a user is a
  (customer_id, user_id) pair; events without a user_id are not counted for users).
* **Cohorts** (``cohort``): ``first_time`` -- a unit's cohort is the period of its first-ever
  start event (all history counts: a unit whose first start event is before the first analysed
  period is in no cohort); ``recurring`` -- a unit is in the cohort of every analysed period in
  which it did the start event.
* **Returned** at offset N >= 1 (``returning``): ``on`` -- did the return event in period
  cohort + N; ``on_or_after`` -- did it in cohort + N or any later analysed period ("still
  around"; non-increasing in N). Offset 0 is the cohort itself: ``returned = cohort_size``.
* ``retention_rate = returned / cohort_size`` (null for an empty cohort).

Output (long format, one row per cell of the triangle): [by...], cohort (label), cohort_start
(naive UTC instant of the local period start), period_offset, cohort_size, returned,
retention_rate. A cohort has the offsets 0 .. (last analysed period - cohort), capped by
``max_periods``; every analysed period and segment group appears, empty cohorts with size 0.
Duplicate events count once (a unit either did an event in a period or not).

Reads the daily rollup when its grain suffices (customers, rollup days in the reporting zone:
:func:`~keepwell.metrics.daily.reads_rollup`), else raw events; identical results either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir
import pandas as pd

from keepwell.errors import InvalidInput
from keepwell.metrics import periods as P
from keepwell.metrics.daily import COUNT_PREFIX, event_slug, event_slug_expr, reads_rollup
from keepwell.metrics.period_activity import period_activity, period_neighbours
from keepwell.metrics.registry import metric
from keepwell.metrics.segments import Filters, restrict, segment_keys
from keepwell.metrics.sources import Sources

__all__ = ["event_retention"]

CohortKind = Literal["first_time", "recurring"]
Returning = Literal["on", "on_or_after"]
Unit = Literal["customer", "user"]


def _choice(value: str, allowed: Sequence[str], field: str) -> str:
    if value not in allowed:
        raise InvalidInput(
            f"unknown {field} {value!r}", field=field, expected=" or ".join(map(repr, allowed))
        )
    return value


def _complete_periods(start: date, end: date, period: P.Period, tz: str) -> list[P.PeriodSpan]:
    spans = [s for s in P.grid(start, end, period, tz=tz) if s.first_day + P.STEP[period] <= end]
    if not spans:
        raise InvalidInput(
            f"no complete {period.value} between {start} and {end}: event retention only "
            f"analyses periods that end by the end date",
            field="to",
            expected=f"an end date at least one whole {period.value} after the first "
            f"{period.value} start",
        )
    return spans


def _period_table(spans: list[P.PeriodSpan]) -> ir.Table:
    """The analysed periods: idx, cohort (label), cohort_start (naive UTC)."""
    frame = P.grid_frame(spans)
    df = pd.DataFrame(
        {"idx": range(len(spans)), "cohort": frame.period, "cohort_start": frame.period_start}
    )
    return ibis.memtable(
        df, schema={"idx": "int64", "cohort": "string", "cohort_start": "timestamp"}
    )


def _segments(spans: list[P.PeriodSpan]) -> ir.Table:
    """The analysed periods cut at UTC midnights: utc_day, seg_start, seg_end (naive UTC), idx.

    An instant ``t`` is in period ``idx`` when ``t.date() == utc_day`` and ``seg_start <= t <
    seg_end``: an equi-join on the UTC date (1-3 segments per date, as local midnights fall at
    any UTC hour and DST can put two in one UTC date) instead of a range join over all periods.
    """
    rows = []
    for i, span in enumerate(spans):
        at = span.start
        while at < span.end:
            day = at.date()
            cut = min(span.end, datetime.combine(day + timedelta(days=1), time()))
            rows.append((day, at, cut, i))
            at = cut
    df = pd.DataFrame(rows, columns=["utc_day", "seg_start", "seg_end", "idx"])
    for col in ("seg_start", "seg_end"):
        df[col] = df[col].astype("datetime64[us]")
    return ibis.memtable(
        df,
        schema={
            "utc_day": "date",
            "seg_start": "timestamp",
            "seg_end": "timestamp",
            "idx": "int64",
        },
    )


def _with_period(table: ir.Table, at: str, segments: ir.Table) -> ir.Table:
    """``table`` rows whose instant ``at`` is in an analysed period, plus that period's ``idx``."""
    t = table.mutate(_utc_day=table[at].date())
    j = t.join(
        segments,
        [
            t._utc_day == segments.utc_day,
            t[at] >= segments.seg_start,
            t[at] < segments.seg_end,
        ],
    )
    return j.select(*[t[c] for c in table.columns], idx=segments.idx)


def _cells(n_periods: int, max_periods: int | None) -> ir.Table:
    """The triangle: (idx, period_offset) for every cohort and offset whose period is analysed."""
    top = n_periods - 1 if max_periods is None else max_periods
    rows = [(i, k) for i in range(n_periods) for k in range(min(n_periods - 1 - i, top) + 1)]
    df = pd.DataFrame(rows, columns=["idx", "period_offset"])
    return ibis.memtable(df, schema={"idx": "int64", "period_offset": "int64"})


def _activity_raw(
    src: Sources,
    *,
    spans: list[P.PeriodSpan],
    start_type: str | None,
    return_type: str | None,
    cohort: str,
    unit_keys: list[str],
) -> tuple[ir.Table, ir.Table | None]:
    """Per-unit activity from raw events.

    Returns (activity, first): activity = one row per unit and analysed period with any start
    or return event: unit keys, idx, did_start, did_return (0/1); first = unit keys and idx of
    the period of the unit's first-ever start event, for units whose first one is analysed
    (``first_time`` cohorts only, else None).
    """
    e = src.events
    if unit_keys == ["customer_id", "user_id"]:
        e = e.filter(e.user_id.notnull())
    w0, w1 = spans[0].start, spans[-1].end
    e = e.filter(e.occurred_at < w1)
    if (start_type, return_type) != (None, None):
        # event types are computed on the (few) distinct names, not on every event
        names = e.select("event").distinct()
        names = names.mutate(type=event_slug_expr(names.event))
        if None not in (start_type, return_type):
            names = names.filter(names.type.isin(sorted({start_type, return_type})))
        e = e.left_join(names, "event").select(*e.columns, type=names.type)

    def flag(t: str | None) -> ir.IntegerValue:
        if t is None:
            return ibis.literal(1, type="int64")
        return ibis.ifelse((e.type == t).fill_null(False), 1, 0)

    e = e.mutate(is_start=flag(start_type), is_return=flag(return_type))
    if None not in (start_type, return_type):
        e = e.filter((e.is_start == 1) | (e.is_return == 1))
    segments = _segments(spans)
    j = _with_period(e.filter(e.occurred_at >= w0), "occurred_at", segments)
    activity = j.group_by([*unit_keys, "idx"]).aggregate(
        did_start=j.is_start.max(), did_return=j.is_return.max()
    )
    first = None
    if cohort == "first_time":
        s = e.filter(e.is_start == 1)
        f = s.group_by(unit_keys).aggregate(first_at=s.occurred_at.min())
        f = f.filter(f.first_at >= w0)
        first = _with_period(f, "first_at", segments).select(*unit_keys, "idx")
    return activity, first


def _activity_rollup(
    src: Sources,
    *,
    start: date,
    end: date,
    spans: list[P.PeriodSpan],
    period: P.Period,
    start_type: str | None,
    return_type: str | None,
    cohort: str,
) -> tuple[ir.Table, ir.Table | None]:
    """From the report's per-period activity (:func:`period_activity`, customers only): same
    shape as :func:`_activity_raw`. Its period indexes are the analysed periods' (0 = first)."""
    pa = period_activity(src, start=start, end=end, period=period)
    pa = pa.filter(pa.idx < len(spans))

    def did(t: str | None) -> ir.IntegerValue:
        if t is None:
            return ibis.literal(1, type="int64")
        col = f"{COUNT_PREFIX}{t}"
        if col not in pa.columns:
            return ibis.literal(0, type="int64")
        return ibis.ifelse(pa[col] > 0, 1, 0)

    rows = pa.select("customer_id", "idx", is_start=did(start_type), is_return=did(return_type))
    analysed = rows.filter(rows.idx >= 0, (rows.is_start == 1) | (rows.is_return == 1))
    activity = analysed.select(
        "customer_id", "idx", did_start=analysed.is_start, did_return=analysed.is_return
    )
    first = None
    if cohort == "first_time" and start_type is None:  # the first period with any activity
        nav = period_neighbours(src, start=start, end=end, period=period)
        first = nav.filter(nav.prev_idx.isnull(), nav.idx >= 0, nav.idx < len(spans))
        first = first.select("customer_id", "idx")
    elif cohort == "first_time":
        s = rows.filter(rows.is_start == 1)
        first = s.group_by("customer_id").aggregate(idx=s.idx.min())
        first = first.filter(first.idx >= 0)
    return activity, first


@metric(
    "event_retention",
    title="Event retention (start event -> return event)",
    needs={"events"},
    params={
        "start",
        "end",
        "period",
        "start_event",
        "return_event",
        "cohort",
        "returning",
        "max_periods",
        "unit",
        "filters",
        "by",
    },
)
def event_retention(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.week,
    start_event: str | None = None,
    return_event: str | None = None,
    cohort: CohortKind = "first_time",
    returning: Returning = "on",
    max_periods: int | None = None,
    unit: Unit = "customer",
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Share of a cohort of units that did ``start_event`` and come back with ``return_event``.

    For cohort period c and offset N >= 1 (see the module docstring for every definition):

    * cohort_size(c) = units whose cohort is c (``first_time``: first-ever start event in c;
      ``recurring``: a start event in c);
    * returned(c, N) = members with a return event in period c + N (``returning="on"``) or in
      any analysed period >= c + N (``"on_or_after"``); returned(c, 0) = cohort_size(c);
    * retention_rate(c, N) = returned(c, N) / cohort_size(c) (null when the cohort is empty).

    Window: the periods of [start, end) (start floored to its period) that end by ``end``;
    a cohort's cells stop at the last of them (the triangle), or at ``max_periods``.
    Units: counts of customers (or users), rate a fraction in [0, 1].

    Columns: [by...], cohort, cohort_start, period_offset, cohort_size, returned,
    retention_rate.

    >>> import ibis, pandas as pd
    >>> from keepwell.metrics.sources import Sources
    >>> con = ibis.duckdb.connect()
    >>> ev = pd.DataFrame({
    ...     "customer_id": ["a", "a", "b", "b"],
    ...     "event": ["signup", "login", "signup", "login"],
    ...     "occurred_at": pd.to_datetime(
    ...         ["2026-03-02 09:00", "2026-03-10 09:00", "2026-03-03 09:00", "2026-03-04 09:00"]
    ...     ),
    ... })
    >>> src = Sources.from_frames(con, {"events": ev})
    >>> t = event_retention(src, start=date(2026, 3, 2), end=date(2026, 3, 16),
    ...                     start_event="signup", return_event="login")
    >>> print(con.execute(t).drop(columns="cohort_start").to_string(index=False))
      cohort  period_offset  cohort_size  returned  retention_rate
    2026-W10              0            2         2             1.0
    2026-W10              1            2         1             0.5
    2026-W11              0            0         0             NaN
    """
    period = P.Period(_choice(str(period), [p.value for p in P.Period], "period"))
    _choice(cohort, ("first_time", "recurring"), "cohort")
    _choice(returning, ("on", "on_or_after"), "returning")
    _choice(unit, ("customer", "user"), "unit")
    if max_periods is not None and (
        isinstance(max_periods, bool) or not isinstance(max_periods, int) or max_periods < 0
    ):
        raise InvalidInput(
            f"max_periods must be a whole number >= 0, got {max_periods!r}",
            field="max_periods",
            expected="a whole number >= 0, or nothing for all periods",
        )
    for name, value in (("start_event", start_event), ("return_event", return_event)):
        if value is not None and not event_slug(str(value)).strip("_"):
            raise InvalidInput(
                f"{name} {value!r} names no event", field=name, expected="an event name"
            )
    start_type = None if start_event is None else event_slug(str(start_event))
    return_type = None if return_event is None else event_slug(str(return_event))
    spans = _complete_periods(start, end, period, src.timezone)
    by = list(by)
    keys = segment_keys(src, filters=filters, by=by)
    unit_keys = ["customer_id", "user_id"] if unit == "user" else ["customer_id"]

    if reads_rollup(src, unit=unit):
        activity, first = _activity_rollup(
            src,
            start=start,
            end=end,
            spans=spans,
            period=period,
            start_type=start_type,
            return_type=return_type,
            cohort=cohort,
        )
    else:
        activity, first = _activity_raw(
            src,
            spans=spans,
            start_type=start_type,
            return_type=return_type,
            cohort=cohort,
            unit_keys=unit_keys,
        )

    # members: (unit, cohort idx), one row each
    if cohort == "first_time":
        members = first
    else:
        members = activity.filter(activity.did_start == 1).select(*unit_keys, "idx")
    returns = activity.filter(activity.did_return == 1).select(*unit_keys, ret_idx="idx")
    cells = _cells(len(spans), max_periods)
    sizes = restrict(members, keys)
    sizes = sizes.group_by([*by, "idx"]).aggregate(cohort_size=sizes.count())
    if returning == "on":
        # one row per member and later period with a return: offset = that period - cohort
        pairs = members.join(returns, [*unit_keys, members.idx < returns.ret_idx])
        pairs = pairs.select(*unit_keys, idx=members.idx, gap=returns.ret_idx - members.idx)
        if max_periods is not None:
            pairs = pairs.filter(pairs.gap <= max_periods)
        pairs = restrict(pairs, keys)
        returned = pairs.group_by([*by, "idx", pairs.gap.name("period_offset")]).aggregate(
            returned=pairs.count()
        )
    else:
        # a member is back at every offset 1 .. (its last return period - cohort): count
        # members per last offset, then add up the counts of all last offsets >= N
        last = returns.group_by(unit_keys).aggregate(last_idx=returns.ret_idx.max())
        reach = members.join(last, unit_keys)
        reach = reach.filter(reach.last_idx > reach.idx)
        reach = restrict(reach.select(*unit_keys, "idx", reach_n=reach.last_idx - reach.idx), keys)
        per_reach = reach.group_by([*by, "idx", "reach_n"]).aggregate(n=reach.count())
        j = per_reach.join(
            cells,
            [
                per_reach.idx == cells.idx,
                cells.period_offset >= 1,
                cells.period_offset <= per_reach.reach_n,
            ],
        )
        j = j.select(
            *[per_reach[c] for c in by],
            idx=per_reach.idx,
            period_offset=cells.period_offset,
            n=per_reach.n,
        )
        returned = j.group_by([*by, "idx", "period_offset"]).aggregate(returned=j.n.sum())

    grid = _period_table(spans)
    frame = grid.join(cells, "idx")
    if by:
        frame = keys.select(*by).distinct().cross_join(frame)

    def same_group(left: ir.Table, right: ir.Table) -> list:
        return [left[c].identical_to(right[c]) for c in by]

    f1 = frame.left_join(sizes, [*same_group(frame, sizes), frame.idx == sizes.idx])
    f1 = f1.select(
        *[frame[c] for c in frame.columns],
        cohort_size=sizes.cohort_size.fill_null(0).cast("int64"),
    )
    f2 = f1.left_join(
        returned,
        [
            *same_group(f1, returned),
            f1.idx == returned.idx,
            f1.period_offset == returned.period_offset,
        ],
    )
    out = f2.select(
        *[f1[c] for c in by],
        f1.cohort,
        f1.cohort_start,
        f1.period_offset,
        f1.cohort_size,
        returned=ibis.ifelse(
            f1.period_offset == 0, f1.cohort_size, returned.returned.fill_null(0)
        ).cast("int64"),
    )
    out = out.mutate(
        retention_rate=ibis.ifelse(
            out.cohort_size > 0,
            out.returned.cast("float64") / out.cohort_size.cast("float64"),
            ibis.null("float64"),
        )
    )
    return out.order_by([*by, "cohort_start", "period_offset"])
