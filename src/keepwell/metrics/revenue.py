"""Revenue metrics: MRR and its movements, NRR/GRR, LTV, cost of churn, repeat revenue share.

PRODUCT.md section 1 ("Revenue", "Cost of churn"). Definitions: ``docs/metrics/revenue.md``.

Conventions shared by every metric here:

* **MRR(c, t)** of customer c at instant t = sum of ``mrr_minor`` over c's subscription rows
  in force at t (``started_at <= t < ended_at``), after bridging grace gaps
  (:func:`~keepwell.metrics.activity.bridged_subscriptions`: across a gap of at most
  ``grace_days`` the MRR of the rows that stopped carries over). MRR is already monthly, so
  annual plans need no conversion here (an annual plan's row carries its price / 12).
* A customer is **paying** at t when MRR(c, t) > 0.
* Money stays in integer **minor units** of its currency; every result row carries a
  ``currency`` and amounts of different currencies are never added together (a customer with
  rows in two currencies is followed separately in each).
* Periods [d0, d1) are calendar-aligned in the reporting time zone
  (:func:`~keepwell.metrics.churn.period_table`); a change at exactly d1 is seen at d1, so it
  belongs to the period that ends there.
* Rates are float64 and null when their denominator is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis
import ibis.expr.types as ir
import pandas as pd
from dateutil.relativedelta import relativedelta

from keepwell.metrics import periods as P
from keepwell.metrics.activity import bridged_subscriptions, shared
from keepwell.metrics.churn import customer_periods, period_table
from keepwell.metrics.params import check_fraction, check_whole
from keepwell.metrics.registry import metric
from keepwell.metrics.segments import Filters, restrict, segment_keys
from keepwell.metrics.sources import Sources
from keepwell.metrics.tabulate import group_unless_alone, ratio, sum_over_frame

GRID = ["period", "period_start", "period_end"]

MOVEMENT_COLUMNS = [
    "customers_start",
    "customers_end",
    "mrr_start",
    "mrr_end",
    "new",
    "reactivation",
    "expansion",
    "contraction",
    "churned",
    "customers_new",
    "customers_reactivated",
    "customers_expanded",
    "customers_contracted",
    "customers_churned",
]


def paying_rows(
    src: Sources,
    *,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Bridged subscription rows of the customers in the segment, widened with the ``by`` columns.

    Columns: customer_id, plan, mrr_minor, currency, started_at, ended_at, [by...].
    """
    check_whole(grace_days, "grace_days", minimum=0)
    keys = segment_keys(src, filters=filters, by=by)
    return restrict(bridged_subscriptions(src, grace_days=grace_days), keys)


def mrr_pairs(
    rows: ir.Table, grid: ir.Table, *, at0: str, at1: str, by: Sequence[str] = ()
) -> ir.Table:
    """MRR of each customer and currency at two instants of each grid row.

    ``at0`` <= ``at1`` name timestamp columns of ``grid``, whose rows ``period_start``
    identifies. One range join: each row meets the grid rows it overlaps ([at0, at1], ends
    included). Returns one row per ([by...], customer_id, currency, period_start) with a row
    overlapping: ``mrr0`` = MRR at ``grid[at0]``, ``mrr1`` = MRR at ``grid[at1]`` (0 when
    nothing was in force then).
    """
    j = rows.join(grid, (rows.started_at <= grid[at1]) & (rows.ended_at > grid[at0]))
    mrr = j.mrr_minor.cast("int64")
    zero = ibis.literal(0, type="int64")
    in_force = {
        name: (j.started_at <= j[col]) & (j[col] < j.ended_at)
        for name, col in (("mrr0", at0), ("mrr1", at1))
    }
    j = j.select(
        *by,
        "customer_id",
        "currency",
        "period_start",
        "n_rows",
        **{name: ibis.ifelse(cond, mrr, zero) for name, cond in in_force.items()},
    )
    keys = [*by, "customer_id", "currency", "period_start"]
    # a customer with one row has one (currency, grid row) pair per overlap already
    return group_unless_alone(j, keys, {"mrr0": "sum", "mrr1": "sum"}, j.n_rows == 1)


def _per_group(
    per_customer: ir.Table, grid: ir.Table, by: Sequence[str], values: Sequence[str]
) -> ir.Table:
    """Sum ``values`` per ([by...], currency, grid row), every grid row for every group seen,
    then widened with the grid's columns."""
    keys = [*by, "currency", "period_start"]
    frame = per_customer.select(*by, "currency").distinct().cross_join(grid.select("period_start"))
    t = sum_over_frame(per_customer, frame, keys, values)
    t = t.join(grid, "period_start")
    extra = [c for c in grid.columns if c not in GRID]
    return t.select(*by, "currency", *GRID, *extra, *values)


def _first_paid(src: Sources) -> ir.Table:
    """When each customer first had MRR > 0 (any currency): customer_id, first_paid_at."""
    s = src.subscriptions
    s = s.filter(
        s.mrr_minor > 0, s.ended_at.isnull() | (s.ended_at.cast("timestamp") > s.started_at)
    )
    return s.group_by("customer_id").aggregate(first_paid_at=s.started_at.cast("timestamp").min())


@metric(
    "mrr",
    title="MRR and its movements",
    needs={"subscriptions"},
    params={"start", "end", "period", "grace_days", "filters", "by"},
)
def mrr_movements(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """MRR at the start and end of each period and the movements between, per currency.

    Endpoint method: for each customer, m0 = MRR(c, d0) and m1 = MRR(c, d1); what happened in
    between is not looked at, so an upgrade then a downgrade back within one period nets to no
    movement, and a customer who joins and leaves within a period never shows.

    * ``new`` = sum m1 where m0 = 0 < m1 and c never had MRR > 0 before d0;
      ``reactivation`` = the same where c had MRR > 0 at some time before d0;
      ``expansion`` = sum (m1 - m0) where 0 < m0 < m1; ``contraction`` = sum (m0 - m1) where
      0 < m1 < m0; ``churned`` = sum m0 where m0 > 0 = m1 (a positive amount).
    * ``mrr_start`` = sum m0, ``mrr_end`` = sum m1; ``customers_start``/``customers_end`` =
      customers paying at d0/d1; ``customers_new``, ... = customers in each movement.
    * ``net_new_mrr`` = new + reactivation + expansion - contraction - churned
      (= mrr_end - mrr_start).
    * ``gross_mrr_churn_rate`` = (churned + contraction) / mrr_start;
      ``net_mrr_churn_rate`` = (churned + contraction - expansion) / mrr_start (negative when
      expansion outweighs losses); ``quick_ratio`` = (new + reactivation + expansion) /
      (churned + contraction); ``arpa`` = mrr_end / customers_end. Null when the denominator
      is 0.

    Units: amounts in integer minor units of ``currency`` per month; rates as fractions.
    Columns: [by...], currency, period, period_start, period_end, the counts and amounts
    above, the rates. Every (segment, currency) with subscription rows overlapping the range
    gets a row for every period.

    Example: a joins Jan 5 at 1000 and leaves Feb 20; b upgrades from 2000 to 3000 on Feb 10.

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
    >>> t = mrr_movements(src, start=date(2026, 1, 1), end=date(2026, 4, 1))
    >>> cols = ["period", "mrr_start", "mrr_end", "new", "expansion", "churned", "net_new_mrr"]
    >>> print(con.execute(t)[cols].to_string(index=False))
     period  mrr_start  mrr_end  new  expansion  churned  net_new_mrr
    2026-01       2000     3000 1000          0        0         1000
    2026-02       3000     3000    0       1000     1000            0
    2026-03       3000     3000    0          0        0            0
    """
    by = list(by)
    t = _movements(
        src, start=start, end=end, period=period, grace_days=grace_days, filters=filters, by=by
    )
    return t.order_by([*by, "currency", "period_start"])


@shared("mrr_movements")
def _movements(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str,
    grace_days: int,
    filters: Filters | None,
    by: list[str],
) -> ir.Table:
    """:func:`mrr_movements` before ordering (shared by the metrics that build on it)."""
    rows = paying_rows(src, grace_days=grace_days, filters=filters, by=by)
    grid = period_table(src, start, end, period)
    pairs = mrr_pairs(rows, grid, at0="period_start", at1="period_end", by=by)
    paid = _first_paid(src).rename(paid_customer="customer_id")
    p = pairs.left_join(paid, pairs.customer_id == paid.paid_customer)
    m0, m1 = p.mrr0, p.mrr1
    joined = (m0 == 0) & (m1 > 0)
    had_paid = (p.first_paid_at < p.period_start).fill_null(False)
    flags = {
        "new": joined & ~had_paid,
        "reactivation": joined & had_paid,
        "expansion": (m0 > 0) & (m1 > m0),
        "contraction": (m0 > 0) & (m1 > 0) & (m1 < m0),
        "churned": (m0 > 0) & (m1 == 0),
    }
    amounts = {"new": m1, "reactivation": m1, "expansion": m1 - m0}
    amounts |= {"contraction": m0 - m1, "churned": m0}
    counts = {
        "customers_new": "new",
        "customers_reactivated": "reactivation",
        "customers_expanded": "expansion",
        "customers_contracted": "contraction",
        "customers_churned": "churned",
    }
    per_customer = p.select(
        *by,
        "currency",
        "period_start",
        customers_start=ibis.ifelse(m0 > 0, 1, 0),
        customers_end=ibis.ifelse(m1 > 0, 1, 0),
        mrr_start=m0,
        mrr_end=m1,
        **{k: ibis.ifelse(flags[k], amounts[k], 0) for k in flags},
        **{k: ibis.ifelse(flags[v], 1, 0) for k, v in counts.items()},
    )
    t = _per_group(per_customer, grid, by, MOVEMENT_COLUMNS)
    losses = t.churned + t.contraction
    gains = t.new + t.reactivation + t.expansion
    t = t.mutate(
        net_new_mrr=gains - losses,
        gross_mrr_churn_rate=ratio(losses, t.mrr_start),
        net_mrr_churn_rate=ratio(losses - t.expansion, t.mrr_start),
        quick_ratio=ratio(gains, losses),
        arpa=ratio(t.mrr_end, t.customers_end),
    )
    return t


def _window_grid(
    src: Sources, start: date, end: date, period: P.Period | str, window_months: int | None
) -> ir.Table:
    """The period grid plus ``window_start``: d1 - window_months months (default: d0)."""
    period = P.Period(period)
    spans = P.grid(start, end, period, tz=src.timezone)
    frame = P.grid_frame(spans)
    if window_months is None:
        starts = [s.start for s in spans]
    else:
        back = relativedelta(months=window_months)
        starts = [P.to_utc_naive(s.first_day + P.STEP[period] - back, src.timezone) for s in spans]
    frame["window_start"] = pd.to_datetime(starts).astype("datetime64[us]")
    return ibis.memtable(frame)


@metric(
    "nrr",
    title="Net and gross revenue retention",
    needs={"subscriptions"},
    params={"start", "end", "period", "window_months", "grace_days", "filters", "by"},
)
def revenue_retention(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    window_months: int | None = None,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Net and gross revenue retention (NRR, GRR) of the customers paying at the window start.

    For each period ending at d1 the window is [w0, d1) with w0 = d0 (default) or
    d1 - ``window_months`` calendar months (e.g. 12: trailing-twelve-month NRR). The cohort is
    the customers paying at w0, per currency; m0 = MRR(c, w0), m1 = MRR(c, d1).

    * ``nrr`` = sum m1 / sum m0 (expansion counts, new customers do not);
    * ``grr`` = sum min(m1, m0) / sum m0 (expansion capped: at most 1).

    Columns: [by...], currency, period, period_start, period_end, window_start (w0),
    customers_start (cohort size), customers_retained
    (still paying at d1), mrr_start = sum m0, mrr_end = sum m1, mrr_retained = sum min(m1, m0),
    nrr, grr (null when mrr_start is 0). Amounts in integer minor units of ``currency``.
    """
    if window_months is not None:
        check_whole(window_months, "window_months")
    by = list(by)
    rows = paying_rows(src, grace_days=grace_days, filters=filters, by=by)
    grid = _window_grid(src, start, end, period, window_months)
    pairs = mrr_pairs(rows, grid, at0="window_start", at1="period_end", by=by)
    m0, m1 = pairs.mrr0, pairs.mrr1
    in_cohort = m0 > 0
    per_customer = pairs.select(
        *by,
        "currency",
        "period_start",
        customers_start=ibis.ifelse(in_cohort, 1, 0),
        customers_retained=ibis.ifelse(in_cohort & (m1 > 0), 1, 0),
        mrr_start=m0,
        mrr_end=ibis.ifelse(in_cohort, m1, 0),
        mrr_retained=ibis.ifelse(in_cohort, ibis.ifelse(m1 < m0, m1, m0), 0),
    )
    values = ["customers_start", "customers_retained", "mrr_start", "mrr_end", "mrr_retained"]
    t = _per_group(per_customer, grid, by, values)
    t = t.mutate(
        nrr=ratio(t.mrr_end, t.mrr_start),
        grr=ratio(t.mrr_retained, t.mrr_start),
    )
    return t.order_by([*by, "currency", "period_start"])


def trailing_churn(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    churn_window_months: int = 3,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Average monthly start-cohort customer churn over the months before each period's end.

    The window of a period ending at d1 is the ``churn_window_months`` whole calendar months
    ending at the last month boundary at or before d1 (for month and quarter periods: the
    months just before d1). ``monthly_churn_rate`` = sum start_lost / sum customers_start over
    those months (the start-cohort churn of :func:`~keepwell.metrics.churn.customer_churn`,
    period month, aggregated here from its per-customer drill-down
    :func:`~keepwell.metrics.churn.customer_periods`): the customer-weighted mean of the
    monthly churn rates; null when no customer was active.

    Columns: [by...], period, churn_window_start, churn_window_end, churn_window_months,
    window_customers_start, window_lost, monthly_churn_rate.
    """
    check_whole(churn_window_months, "churn_window_months")
    by = list(by)
    return _trailing_churn(
        src,
        start=start,
        end=end,
        period=P.Period(period),
        churn_window_months=churn_window_months,
        grace_days=grace_days,
        filters=filters,
        by=by,
    )


@shared("trailing_churn")
def _trailing_churn(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period,
    churn_window_months: int,
    grace_days: int,
    filters: Filters | None,
    by: list[str],
) -> ir.Table:
    """:func:`trailing_churn`'s query (shared by the metrics that use it)."""
    tz = src.timezone
    spans = P.grid(start, end, period, tz=tz)
    window_ends = [P.floor(s.first_day + P.STEP[period], P.Period.month) for s in spans]
    window_starts = [d - relativedelta(months=churn_window_months) for d in window_ends]
    windows = ibis.memtable(
        pd.DataFrame(
            {
                "period": [s.label for s in spans],
                "churn_window_start": pd.to_datetime(
                    [P.to_utc_naive(d, tz) for d in window_starts]
                ).astype("datetime64[us]"),
                "churn_window_end": pd.to_datetime(
                    [P.to_utc_naive(d, tz) for d in window_ends]
                ).astype("datetime64[us]"),
            }
        )
    )
    cp = customer_periods(
        src,
        start=min(window_starts),
        end=max(window_ends),
        period=P.Period.month,
        grace_days=grace_days,
        filters=filters,
        by=by,
    )
    monthly = cp.group_by([*by, "period_start", "period_end"]).aggregate(
        customers_start=cp.active_start.sum(),
        start_lost=(cp.active_start & ~cp.active_end).sum(),
    )
    monthly = monthly.rename(m_start="period_start", m_end="period_end")
    j = windows.join(
        monthly,
        (monthly.m_start >= windows.churn_window_start)
        & (monthly.m_end <= windows.churn_window_end),
    )
    t = j.group_by([*by, "period", "churn_window_start", "churn_window_end"]).aggregate(
        window_customers_start=j.customers_start.sum().cast("int64"),
        window_lost=j.start_lost.sum().cast("int64"),
    )
    return t.mutate(
        churn_window_months=ibis.literal(churn_window_months, type="int64"),
        monthly_churn_rate=ratio(t.window_lost, t.window_customers_start),
    )


def _with_churn(mm: ir.Table, tc: ir.Table, by: Sequence[str], margin: float) -> ir.Table:
    """``mrr_movements`` left-joined to ``trailing_churn`` on segment (null-safe) and period,
    plus ``margin`` and ``expected_lifetime_months`` = 1 / monthly_churn_rate."""
    tc = tc.rename(**{f"tc_{k}": k for k in [*by, "period"]})
    preds = [mm[k].identical_to(tc[f"tc_{k}"]) for k in by] + [mm.period == tc.tc_period]
    j = mm.left_join(tc, preds)
    return j.mutate(
        margin=ibis.literal(float(margin), type="float64"),
        expected_lifetime_months=ratio(ibis.literal(1.0, type="float64"), j.monthly_churn_rate),
    )


@metric(
    "ltv",
    title="Customer lifetime value",
    needs={"subscriptions"},
    params={
        "start",
        "end",
        "period",
        "margin",
        "churn_window_months",
        "grace_days",
        "filters",
        "by",
    },
)
def ltv(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    margin: float = 0.8,
    churn_window_months: int = 3,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Customer lifetime value per period and currency: LTV = ARPA x margin / monthly churn.

    * ``arpa`` = MRR at d1 / customers paying at d1 (:func:`mrr_movements`), per currency;
    * ``monthly_churn_rate`` = start-cohort customer churn averaged over the
      ``churn_window_months`` (default 3) calendar months before d1 (:func:`trailing_churn`;
      the window is stated in ``churn_window_start``/``churn_window_end``);
    * ``expected_lifetime_months`` = 1 / monthly_churn_rate;
    * ``ltv`` = arpa x ``margin`` x expected_lifetime_months (gross margin, default 0.8).

    Null when no customer pays at d1 or the window saw no churn (lifetime unbounded).
    Units: arpa and ltv in minor units of ``currency`` (float); lifetime in months.
    """
    check_fraction(margin, "margin")
    by = list(by)
    common = dict(start=start, end=end, period=period, grace_days=grace_days, filters=filters)
    mm = mrr_movements(src, **common, by=by)
    tc = trailing_churn(src, **common, by=by, churn_window_months=churn_window_months)
    j = _with_churn(mm, tc, by, margin)
    t = j.select(
        *by,
        "currency",
        *GRID,
        "customers_end",
        "mrr_end",
        "arpa",
        "margin",
        "churn_window_start",
        "churn_window_end",
        churn_window_months=ibis.literal(churn_window_months, type="int64"),
        monthly_churn_rate=j.monthly_churn_rate,
        expected_lifetime_months=j.expected_lifetime_months,
        ltv=j.arpa * j.margin * j.expected_lifetime_months,
    )
    return t.order_by([*by, "currency", "period_start"])


@metric(
    "cost_of_churn",
    title="Cost of churn",
    needs={"subscriptions"},
    params={
        "start",
        "end",
        "period",
        "profit_per_customer_minor",
        "margin",
        "churn_window_months",
        "grace_days",
        "filters",
        "by",
    },
)
def cost_of_churn(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    profit_per_customer_minor: int | None = None,
    margin: float = 0.8,
    churn_window_months: int = 3,
    grace_days: int = 7,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """What the period's churn costs, two ways, per period and currency.

    * ``customers_lost`` = customers paying at d0 and not at d1 (``customers_churned`` of
      :func:`mrr_movements`); ``lost_profit`` = customers_lost x ``profit_per_customer``
      (PRODUCT.md: 15 lost x 30k = 450k a month). ``profit_per_customer`` is the parameter
      ``profit_per_customer_minor`` when given (applied to every currency), else the average
      monthly profit of a paying customer at d0: mrr_start / customers_start x margin.
    * ``lost_lifetime_value`` = churned MRR x expected lifetime (months) x ``margin``, where
      expected lifetime = 1 / monthly churn over the trailing ``churn_window_months``
      (:func:`trailing_churn`, as in :func:`ltv`).

    Units: minor units of ``currency`` (float); null where an input is null.
    """
    check_fraction(margin, "margin")
    if profit_per_customer_minor is not None:
        check_whole(profit_per_customer_minor, "profit_per_customer_minor", minimum=0)
    by = list(by)
    common = dict(start=start, end=end, period=period, grace_days=grace_days, filters=filters)
    mm = mrr_movements(src, **common, by=by)
    tc = trailing_churn(src, **common, by=by, churn_window_months=churn_window_months)
    j = _with_churn(mm, tc, by, margin)
    if profit_per_customer_minor is None:
        profit = ratio(j.mrr_start, j.customers_start) * j.margin
    else:
        profit = ibis.literal(float(profit_per_customer_minor), type="float64")
    t = j.select(
        *by,
        "currency",
        *GRID,
        "margin",
        "churn_window_start",
        "churn_window_end",
        customers_lost=j.customers_churned,
        profit_per_customer=profit,
        lost_profit=j.customers_churned.cast("float64") * profit,
        churned_mrr=j.churned,
        churn_window_months=ibis.literal(churn_window_months, type="int64"),
        monthly_churn_rate=j.monthly_churn_rate,
        expected_lifetime_months=j.expected_lifetime_months,
        lost_lifetime_value=j.churned.cast("float64") * j.expected_lifetime_months * j.margin,
    )
    return t.order_by([*by, "currency", "period_start"])


@metric(
    "repeat_revenue",
    title="Repeat-customer revenue share",
    needs={"orders"},
    params={"start", "end", "period", "filters", "by"},
)
def repeat_revenue_share(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Share of order revenue that comes from repeat customers, per period and currency.

    Only ``completed`` orders count. An order is a *repeat* order when its customer had a
    completed order strictly earlier (at any time, in any currency; orders at the same instant
    as the customer's first order all count as first orders).

    * ``orders``, ``revenue`` = count and sum of amount_minor of the period's orders;
    * ``customers`` = distinct customers ordering; ``repeat_customers`` = those with a repeat
      order in the period;
    * ``repeat_revenue`` = amount of repeat orders; ``repeat_revenue_share`` =
      repeat_revenue / revenue (null when revenue is 0).

    Units: integer minor units of ``currency``.
    """
    by = list(by)
    o = src.orders
    o = o.filter(o.status == "completed", o.customer_id.notnull(), o.ordered_at.notnull())
    o = o.select("customer_id", "currency", "amount_minor", at=o.ordered_at.cast("timestamp"))
    first = (
        o.group_by("customer_id").aggregate(first_at=o.at.min()).rename(f_customer="customer_id")
    )
    o = o.join(first, o.customer_id == first.f_customer)
    o = o.select("customer_id", "currency", "amount_minor", "at", repeat=o.at > o.first_at)
    o = restrict(o, segment_keys(src, filters=filters, by=by))
    grid = period_table(src, start, end, period)
    j = o.join(grid, (grid.period_start <= o.at) & (o.at < grid.period_end))
    keys = [*by, "currency", *GRID]
    null_id = ibis.null("string")
    per_order = j.select(
        *keys,
        customer_id=j.customer_id,
        repeat_customer_id=ibis.ifelse(j.repeat, j.customer_id, null_id),
        orders=ibis.literal(1, type="int64"),
        revenue=j.amount_minor.cast("int64"),
        repeat_revenue=ibis.ifelse(j.repeat, j.amount_minor.cast("int64"), 0),
    )
    frame = j.select(*by, "currency").distinct().cross_join(grid)
    zero = ibis.literal(0, type="int64")
    empty = frame.select(
        *keys,
        customer_id=null_id,
        repeat_customer_id=null_id,
        orders=zero,
        revenue=zero,
        repeat_revenue=zero,
    )
    u = per_order.union(empty, distinct=False)
    t = u.group_by(keys).aggregate(
        orders=u.orders.sum().cast("int64"),
        customers=u.customer_id.nunique().cast("int64"),
        repeat_customers=u.repeat_customer_id.nunique().cast("int64"),
        revenue=u.revenue.sum().cast("int64"),
        repeat_revenue=u.repeat_revenue.sum().cast("int64"),
    )
    t = t.mutate(repeat_revenue_share=ratio(t.repeat_revenue, t.revenue))
    return t.order_by([*by, "currency", "period_start"])
