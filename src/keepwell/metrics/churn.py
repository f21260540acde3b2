"""Customer (logo) churn and retention per period. PRODUCT.md section 1.

For each period [d0, d1) (calendar-aligned, reporting time zone):

* ``customers_start`` = customers active at d0; ``customers_end`` = active at d1.
* ``start_lost`` = active at d0 and not at d1 (the start cohort's losses).
* ``new`` = customers whose first-ever spell starts in (d0, d1]; ``reactivated`` = a later
  spell starts in (d0, d1]; ``churned`` = customers with a spell ending in (d0, d1].
  (Boundaries: with end-exclusive activity a change at exactly d1 is seen at d1, so it
  belongs to the period that ends there.)
* ``total_lost`` = customers active at d0 or starting a spell in the period who are not
  active at d1 -- the start cohort's losses plus the period's new/reactivated customers lost.
* **start-cohort churn** ``churn_rate`` = start_lost / customers_start
  (150 at start, 5 lost -> 3.3%).
* **total churn** ``total_churn_rate`` = total_lost / customers_start
  (500 at start, 15 of them lost, 200 new of whom 4 lost -> 19 / 500 = 3.8%).
* ``retention_rate`` = (customers_start - start_lost) / customers_start = 1 - churn_rate.

Rates are null when ``customers_start`` is 0. Identity: customers_end = customers_start -
total_lost + new + reactivated - (customers who started more than one spell in the period
count once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis
import ibis.expr.types as ir

from keepwell.errors import InvalidInput
from keepwell.metrics import periods as P
from keepwell.metrics.activity import spells
from keepwell.metrics.registry import metric
from keepwell.metrics.segments import Filters, restrict, segment_keys
from keepwell.metrics.sources import Sources
from keepwell.metrics.tabulate import group_unless_alone


def period_table(src: Sources, start: date, end: date, period: P.Period | str) -> ir.Table:
    """The reporting periods as a small in-query table (period, period_start, period_end)."""
    return ibis.memtable(P.grid_frame(P.grid(start, end, period, tz=src.timezone)))


def customer_periods(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
    activity: str = "subscriptions",
    inactivity_days: int = 30,
) -> ir.Table:
    """One row per (customer, period) the customer touched, with its state flags.

    Columns: [by...], customer_id, period, period_start, period_end, active_start,
    active_end, first_started, restarted, ended (booleans). The drill-down behind
    :func:`customer_churn`: "who" always matches "how many".
    """
    if activity == "subscriptions":
        base = spells(src, grace_days=grace_days)
    elif activity == "events":
        from keepwell.metrics.usage_spells import activity_spells_from_events

        base = activity_spells_from_events(src, inactivity_days=inactivity_days)
    else:
        raise InvalidInput(
            f"unknown activity {activity!r}", field="activity", expected="subscriptions or events"
        )
    sp = restrict(base, segment_keys(src, filters=filters, by=by))
    grid = period_table(src, start, end, period)
    j = sp.join(grid, (sp.started_at <= grid.period_end) & (sp.ended_at > grid.period_start))
    d0, d1 = j.period_start, j.period_end
    flags = j.mutate(
        a0=ibis.ifelse((j.started_at <= d0) & (d0 < j.ended_at), 1, 0),
        a1=ibis.ifelse((j.started_at <= d1) & (d1 < j.ended_at), 1, 0),
        f=ibis.ifelse((j.spell_no == 1) & (j.started_at > d0) & (j.started_at <= d1), 1, 0),
        r=ibis.ifelse((j.spell_no > 1) & (j.started_at > d0) & (j.started_at <= d1), 1, 0),
        e=ibis.ifelse((j.ended_at > d0) & (j.ended_at <= d1), 1, 0),
    )
    keys = [*by, "customer_id", "period", "period_start", "period_end"]
    # one row per customer and period already for customers with one spell (most of them)
    flags = group_unless_alone(
        flags, keys, dict.fromkeys(["a0", "a1", "f", "r", "e"], "max"), flags.n_spells == 1
    )
    return flags.select(
        *keys,
        active_start=flags.a0 == 1,
        active_end=flags.a1 == 1,
        first_started=flags.f == 1,
        restarted=flags.r == 1,
        ended=flags.e == 1,
    )


def _rate(num: ir.IntegerValue, den: ir.IntegerValue) -> ir.FloatingValue:
    return ibis.ifelse(den > 0, num.cast("float64") / den.cast("float64"), ibis.null("float64"))


@metric(
    "churn",
    title="Customer churn and retention",
    needs={"subscriptions"},
    params={
        "start",
        "end",
        "period",
        "grace_days",
        "filters",
        "by",
        "activity",
        "inactivity_days",
    },
)
def customer_churn(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
    activity: str = "subscriptions",
    inactivity_days: int = 30,
) -> ir.Table:
    """Customer churn, retention and movement counts per period (see module docstring).

    ``activity="events"`` is for businesses without subscriptions: a customer is active while
    an event or order happened within the last ``inactivity_days`` (30); everything else is
    the same. Periods with no customers at all still appear (all counts 0, rates null).
    """
    cp = customer_periods(
        src,
        start=start,
        end=end,
        period=period,
        grace_days=grace_days,
        filters=filters,
        by=by,
        activity=activity,
        inactivity_days=inactivity_days,
    )
    joined = cp.first_started | cp.restarted
    counts = cp.group_by([*by, "period"]).aggregate(
        customers_start=cp.active_start.sum(),
        customers_end=cp.active_end.sum(),
        new=cp.first_started.sum(),
        reactivated=cp.restarted.sum(),
        churned=cp.ended.sum(),
        start_lost=(cp.active_start & ~cp.active_end).sum(),
        total_lost=((cp.active_start | joined) & ~cp.active_end).sum(),
    )
    grid = period_table(src, start, end, period)
    if by:
        groups = counts.select(*by).distinct()
        frame = groups.cross_join(grid)
    else:
        frame = grid
    keys = [frame[k].identical_to(counts[k]) for k in by] + [frame.period == counts.period]
    out = frame.left_join(counts, keys).select(
        *[frame[c] for c in by],
        frame.period,
        frame.period_start,
        frame.period_end,
        *[
            counts[c].fill_null(0).cast("int64").name(c)
            for c in (
                "customers_start",
                "customers_end",
                "new",
                "reactivated",
                "churned",
                "start_lost",
                "total_lost",
            )
        ],
    )
    return out.mutate(
        churn_rate=_rate(out.start_lost, out.customers_start),
        total_churn_rate=_rate(out.total_lost, out.customers_start),
        retention_rate=_rate(out.customers_start - out.start_lost, out.customers_start),
    ).order_by([*by, "period_start"])


def scale_churn(rate: float, *, periods: float) -> float:
    """Convert a churn rate to another period length: 1 - (1 - c) ** k.

    ``periods`` is how many source periods make one target period (monthly -> annual: 12;
    annual -> monthly: 1/12).

    >>> round(scale_churn(0.02, periods=12), 4)
    0.2153
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"a churn rate is between 0 and 1, got {rate}")
    return 1 - (1 - rate) ** periods
