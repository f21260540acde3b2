"""Per customer and reporting period activity, built once per report from the daily rollup.

Most engagement metrics ask the same questions of every (customer, period): was it active, on
how many days, how many events of each type, which was its last active day, was it
active in the last 7 / 28 days of the period, and in which periods was it active before and
after. :func:`period_activity` answers them in one pass over the rollup, and the metrics of a
report (active customers, usage frequency, feature adoption, lifecycle, event retention) read
that table -- a few rows per customer -- instead of each scanning every customer-day again.
On DuckDB the table is materialised once per :class:`~keepwell.metrics.sources.Sources`
(:func:`~keepwell.metrics.activity.shared`); on other backends it is part of each query.

It is used when metrics read the rollup (customers, rollup days in the reporting zone) and
every window asked about lies inside each period (:func:`covers`); otherwise metrics work from
the daily rows as before. Results are identical either way.

Periods are the report's local periods (:func:`~keepwell.metrics.calendars.local_periods`)
with their indexes (0 = first reporting period), preceded by enough earlier periods to cover
:data:`HISTORY_DAYS`; all activity before those is one row per customer with
``idx = EARLIER``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis
import ibis.expr.types as ir

from keepwell.metrics import periods as P
from keepwell.metrics.activity import shared
from keepwell.metrics.calendars import LocalPeriod, local_periods, period_days_in_windows
from keepwell.metrics.daily import COUNT_PREFIX, one_row_per_day, reads_rollup, rollup_event_types
from keepwell.metrics.sources import Sources

HISTORY_DAYS = 366
"""Activity this many days (at least) before the first reporting period keeps its own periods;
anything earlier is summed into one ``EARLIER`` row per customer."""

EARLIER = -1_000_000
"""``idx`` of the row that sums a customer's activity before the calendar (never adjacent)."""

WINDOWS = (7, 28)
"""Window lengths (days at the end of each period) always counted, so that the metrics of one
report with default parameters share one table."""

_BEFORE = {P.Period.day: 366, P.Period.week: 53, P.Period.month: 13, P.Period.quarter: 5}
"""Earlier periods in the calendar: at least :data:`HISTORY_DAYS` days of them."""


def calendar(start: date, end: date, period: P.Period | str) -> list[LocalPeriod]:
    """The calendar's periods: the report's, preceded by ``HISTORY_DAYS``' worth of earlier
    ones (local days; the zone only moves UTC bounds, which this table does not use)."""
    period = P.Period(period)
    return local_periods(start, end, period, tz="UTC", before=_BEFORE[period])


def covers(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str,
    windows: Sequence[int] = (),
    lookback_days: int = 0,
    unit: str = "customer",
) -> bool:
    """Whether :func:`period_activity` can answer: metrics read the rollup, every window fits
    in the shortest reporting period, and ``lookback_days`` stays inside the calendar."""
    if not reads_rollup(src, unit=unit):
        return False
    report = local_periods(start, end, P.Period(period), tz="UTC")
    shortest = min(p.days for p in report)
    return all(0 < n <= shortest for n in windows) and lookback_days <= HISTORY_DAYS


def period_activity(
    src: Sources, *, start: date, end: date, period: P.Period | str, windows: Sequence[int] = ()
) -> ir.Table:
    """One row per customer and calendar period with activity (see the module docstring).

    Columns: customer_id, idx (period index; ``EARLIER`` for all earlier activity),
    active_days, last_day (the last active local day in the period), ``d_<n>`` (active days
    among the period's last n days, for each n of ``windows`` and :data:`WINDOWS`; meaningful
    only where n fits in the period, see :func:`covers`), ``n_<type>`` (events of each rollup
    event type), prev_idx / next_idx (the customer's previous / next period with activity;
    null when none).
    Only days before the end of the last reporting period count.
    """
    lengths = tuple(sorted({*WINDOWS, *windows}))
    return _build(src, start=start, end=end, period=str(P.Period(period)), windows=lengths)


@shared("period_activity")
def _build(src: Sources, *, start: date, end: date, period: str, windows: tuple) -> ir.Table:
    cal = calendar(start, end, period)
    lengths = list(windows)  # a window longer than a period counts all its days there
    days = period_days_in_windows(cal, lengths).drop("period")
    types = [f"{COUNT_PREFIX}{t}" for t in rollup_event_types(src)]
    r = src.rollup
    d = r.filter(r.day < cal[-1].end_day).select("customer_id", *types, day=r.day.cast("date"))
    if not one_row_per_day(src, d):
        d = d.group_by(["customer_id", "day"]).aggregate(**{c: d[c].sum() for c in types})
    j = d.left_join(days, "day")
    # sums skip nulls (days before the calendar, types absent on a day): 0 only per group
    rows = j.group_by(["customer_id", j.idx.fill_null(EARLIER).name("idx")]).aggregate(
        active_days=j.count(),
        last_day=j.day.max(),
        **{f"d_{n}": j[f"in_{n}"].sum() for n in lengths},
        **{c: j[c].sum() for c in types},
    )
    zero = ibis.literal(0, type="int64")
    rows = rows.mutate(
        active_days=rows.active_days.cast("int64"),
        **{
            c: rows[c].fill_null(zero).cast("int64") for c in [*(f"d_{n}" for n in lengths), *types]
        },
    )
    w = ibis.window(group_by=rows.customer_id, order_by=rows.idx)
    return rows.mutate(prev_idx=rows.idx.lag().over(w), next_idx=rows.idx.lead().over(w))
