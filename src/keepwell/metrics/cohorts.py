"""Cohort retention tables (logo and revenue) and retention curves. PRODUCT.md section 1.

Definitions: ``docs/metrics/cohorts.md``.

* A customer's **cohort** is the reporting period (calendar-aligned, reporting time zone)
  containing their first-ever activity start ``first_started_at``
  (:func:`~keepwell.metrics.activity.spells`). Cohorts are the periods of [start, end).
* **Age** N (0, 1, 2, ... periods) is measured from each customer's own first start: the
  checkpoint is ``first_started_at + N periods`` (days, weeks, months or 3-month quarters;
  month arithmetic clamps to the month's last day, Jan 31 + 1 month = Feb 28, and runs on the
  stored UTC time).
* A member is **retained** at age N when active at the checkpoint (a spell has
  ``started_at <= checkpoint < ended_at``; grace gaps are bridged). Age 0 is 100%.
* **Censoring** (the triangle): a member is **eligible** at age N only when the checkpoint is
  before ``as_of`` (default: ``end``), the instant up to which the data is known. Rates use
  eligible members only; a cell with no eligible member has null rates.
* **Revenue retention** follows each member's MRR in the currency they started in (the
  currency of their rows at first start; the alphabetically first if several): MRR at the
  checkpoint / MRR at first start, summed over eligible members (bridged rows, so MRR carries
  over a grace gap).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis
import ibis.expr.types as ir
import pandas as pd

from keepwell.metrics import periods as P
from keepwell.metrics.activity import bridged_subscriptions, shared, spells
from keepwell.metrics.params import check_whole
from keepwell.metrics.registry import metric
from keepwell.metrics.segments import Filters, restrict, segment_keys
from keepwell.metrics.sources import Sources
from keepwell.metrics.tabulate import ratio

AGE_UNIT = {
    P.Period.day: (1, "D"),
    P.Period.week: (7, "D"),
    P.Period.month: (1, "M"),
    P.Period.quarter: (3, "M"),
}

PARAMS = {"start", "end", "period", "max_age", "as_of", "grace_days", "filters", "by"}


def _cohort_grid(src: Sources, start: date, end: date, period: P.Period) -> ir.Table:
    frame = P.grid_frame(P.grid(start, end, period, tz=src.timezone))
    return ibis.memtable(
        frame.rename(
            columns={"period": "cohort", "period_start": "cohort_start", "period_end": "cohort_end"}
        )
    )


@metric(
    "cohorts", title="Cohort retention (logo and revenue)", needs={"subscriptions"}, params=PARAMS
)
def cohort_retention(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    max_age: int | None = None,
    as_of: date | None = None,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Cohort retention table in long format: one row per cohort, currency and age.

    For the members of a cohort (see module docstring), at age N = 0 .. ``max_age`` (default:
    the number of periods in [start, end) minus 1):

    * ``customers`` = cohort size; ``eligible`` = members whose checkpoint is before
      ``as_of``; ``retained`` = eligible members active at their checkpoint;
    * ``logo_retention`` = retained / eligible;
    * ``mrr_start`` = eligible members' MRR at their first start, ``mrr`` = their MRR at the
      checkpoint, ``revenue_retention`` = mrr / mrr_start (net: expansion counts).

    Columns: [by...], cohort, cohort_start, currency, age, customers, eligible, retained,
    logo_retention, mrr_start, mrr, revenue_retention. Where no member is eligible yet (the
    unobserved corner of the triangle) the counts and amounts over eligible members are 0 and
    both rates are null. Amounts: integer minor units of ``currency`` per month.

    Example: a (Jan 5 - Feb 20, 1000) and b (from Jan 1, 2000; 3000 from Feb 10). At age 2
    (Mar 5 and Mar 1) only b is left, but b's expansion keeps the cohort's MRR whole.

    >>> import ibis, pandas as pd
    >>> from keepwell.metrics.sources import Sources
    >>> con = ibis.duckdb.connect()
    >>> subs = pd.DataFrame({
    ...     "customer_id": ["a", "b", "b"],
    ...     "mrr_minor": [1000, 2000, 3000],
    ...     "currency": "USD",
    ...     "started_at": pd.to_datetime(["2026-01-05", "2026-01-01", "2026-02-10"]),
    ...     "ended_at": pd.to_datetime(["2026-02-20", "2026-02-10", None]),
    ... })
    >>> src = Sources.from_frames(con, {"subscriptions": subs})
    >>> t = cohort_retention(src, start=date(2026, 1, 1), end=date(2026, 4, 1))
    >>> cols = ["cohort", "age", "eligible", "retained", "logo_retention", "revenue_retention"]
    >>> print(con.execute(t)[cols].to_string(index=False))
     cohort  age  eligible  retained  logo_retention  revenue_retention
    2026-01    0         2         2             1.0                1.0
    2026-01    1         2         2             1.0                1.0
    2026-01    2         2         1             0.5                1.0
    """
    by = list(by)
    t = _cohort_retention(
        src,
        start=start,
        end=end,
        period=period,
        max_age=max_age,
        as_of=as_of,
        grace_days=grace_days,
        filters=filters,
        by=by,
    )
    return t.order_by([*by, "cohort_start", "currency", "age"])


@shared("cohort_retention")
def _cohort_retention(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str,
    max_age: int | None,
    as_of: date | None,
    grace_days: int,
    filters: Filters | None,
    by: Sequence[str],
) -> ir.Table:
    """:func:`cohort_retention` before ordering (shared with :func:`retention_curve`)."""
    period = P.Period(period)
    by = list(by)
    grid = _cohort_grid(src, start, end, period)
    if max_age is None:
        max_age = len(P.grid(start, end, period, tz=src.timezone)) - 1
    check_whole(max_age, "max_age", minimum=0)
    check_whole(grace_days, "grace_days", minimum=0)
    as_of_at = P.to_utc_naive(as_of or end, src.timezone)

    sp = spells(src, grace_days=grace_days)
    rows = bridged_subscriptions(src, grace_days=grace_days)
    first_spell = sp.filter(sp.spell_no == 1)
    members = restrict(
        first_spell.select("customer_id", "first_started_at", "n_spells", spell_end="ended_at"),
        segment_keys(src, filters=filters, by=by),
    )
    members = members.join(
        grid,
        (grid.cohort_start <= members.first_started_at)
        & (members.first_started_at < grid.cohort_end),
    )
    # Each member's currency and MRR at first start.
    at_first = members.join(
        rows,
        (rows.customer_id == members.customer_id)
        & (rows.started_at <= members.first_started_at)
        & (members.first_started_at < rows.ended_at),
    )
    per_currency = at_first.group_by(["customer_id", "currency"]).aggregate(
        mrr_first=at_first.mrr_minor.sum().cast("int64"),
        n_rows=at_first.n_rows.max(),
        row_end=at_first.ended_at.max(),  # the end of the customer's only row when n_rows = 1
    )
    chosen = per_currency.group_by("customer_id").aggregate(c_currency=per_currency.currency.min())
    first = per_currency.join(
        chosen,
        (per_currency.customer_id == chosen.customer_id)
        & (per_currency.currency == chosen.c_currency),
    ).select(
        f_customer="customer_id",
        currency="currency",
        mrr_first="mrr_first",
        n_rows="n_rows",
        row_end="row_end",
    )
    members = members.join(first, members.customer_id == first.f_customer).drop("f_customer")

    step, unit = AGE_UNIT[period]
    ages = ibis.memtable(pd.DataFrame({"age": range(max_age + 1)}, dtype="int64"))
    cells = members.cross_join(ages)
    cells = cells.mutate(checkpoint=cells.first_started_at + (cells.age * step).as_interval(unit))
    cells = cells.mutate(eligible=cells.checkpoint < ibis.literal(as_of_at, type="timestamp"))
    keys = [*by, "cohort", "cohort_start", "currency", "age"]
    seen = cells.filter(cells.eligible)
    # one spell (one subscription row): active (paying) at a checkpoint after its start while
    # it lasts, read off the member's own row; only the others need the range joins
    retained_alone = cells.eligible & (cells.n_spells == 1) & (cells.checkpoint < cells.spell_end)
    mrr_alone = cells.eligible & (cells.n_rows == 1) & (cells.checkpoint < cells.row_end)

    several = seen.filter(seen.n_spells > 1)
    active = several.join(
        sp,
        (sp.customer_id == several.customer_id)
        & (sp.started_at <= several.checkpoint)
        & (several.checkpoint < sp.ended_at),
    )
    several = seen.filter(seen.n_rows > 1)
    in_force = several.join(
        rows,
        (rows.customer_id == several.customer_id)
        & (rows.currency == several.currency)
        & (rows.started_at <= several.checkpoint)
        & (several.checkpoint < rows.ended_at),
    )
    zero = ibis.literal(0, type="int64")
    one = ibis.literal(1, type="int64")
    parts = [
        cells.select(
            *keys,
            customers=one,
            eligible=ibis.ifelse(cells.eligible, 1, 0).cast("int64"),
            retained=ibis.ifelse(retained_alone, 1, 0).cast("int64"),
            mrr_start=ibis.ifelse(cells.eligible, cells.mrr_first, 0).cast("int64"),
            mrr=ibis.ifelse(mrr_alone, cells.mrr_first, 0).cast("int64"),
        ),
        active.select(*keys, customers=zero, eligible=zero, retained=one, mrr_start=zero, mrr=zero),
        in_force.select(
            *keys,
            customers=zero,
            eligible=zero,
            retained=zero,
            mrr_start=zero,
            mrr=in_force.mrr_minor.cast("int64"),
        ),
    ]
    u = parts[0].union(parts[1], distinct=False).union(parts[2], distinct=False)
    t = u.group_by(keys).aggregate(
        **{c: u[c].sum().cast("int64") for c in ("customers", "eligible", "retained")},
        **{c: u[c].sum().cast("int64") for c in ("mrr_start", "mrr")},
    )
    t = t.select(
        *keys,
        "customers",
        "eligible",
        "retained",
        logo_retention=ratio(t.retained, t.eligible),
        mrr_start=t.mrr_start,
        mrr=t.mrr,
        revenue_retention=ratio(t.mrr, t.mrr_start),
    )
    return t


@metric("retention_curve", title="Retention curve", needs={"subscriptions"}, params=PARAMS)
def retention_curve(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    max_age: int | None = None,
    as_of: date | None = None,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Cohort-weighted logo retention by age across the cohorts of [start, end).

    ``retention`` at age N = sum retained / sum eligible over the cells of
    :func:`cohort_retention` at age N (so each customer weighs the same, whatever the size of
    their cohort; censored members are left out). Null where no member is eligible yet.

    Columns: [by...], age, cohorts (cohorts with an eligible member), eligible, retained,
    retention.
    """
    by = list(by)
    c = _cohort_retention(  # unordered: the order would be lost in the aggregation anyway
        src,
        start=start,
        end=end,
        period=period,
        max_age=max_age,
        as_of=as_of,
        grace_days=grace_days,
        filters=filters,
        by=by,
    )
    null_label = ibis.null("string")
    t = c.group_by([*by, "age"]).aggregate(
        cohorts=ibis.ifelse(c.eligible > 0, c.cohort, null_label).nunique().cast("int64"),
        eligible=c.eligible.sum().cast("int64"),
        retained=c.retained.sum().cast("int64"),
    )
    t = t.mutate(retention=ratio(t.retained, t.eligible))
    return t.order_by([*by, "age"])
