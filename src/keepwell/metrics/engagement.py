"""Engagement: active customers and stickiness, usage frequency, feature adoption, lifecycle,
and churn by tenure. PRODUCT.md section 1 ("Engagement").

Every metric here counts *local days* in the reporting time zone and reads the daily rollup
when it has one whose grain suffices, else raw events (:mod:`keepwell.metrics.daily`; identical
results either way). Shared definitions (``docs/metrics/engagement.md``):

* A customer is **active on a day** when it has at least one event that local day; duplicate
  events count as events, a day is active once; events before signup count.
* "As of day D" means at local midnight starting D, using the days before it (D-n .. D-1); for a
  reporting period that is the first day after it, i.e. windows end on the period's last day.
* Results have one row per reporting period (and ``by`` group), including periods with nothing
  in them (counts 0, rates null).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from keepwell.errors import InvalidInput
from keepwell.metrics import periods as P
from keepwell.metrics.activity import spells
from keepwell.metrics.calendars import (
    LocalPeriod,
    day_periods,
    local_periods,
    period_days_in_windows,
    periods_table,
    trailing_days,
)
from keepwell.metrics.daily import (
    COUNT_PREFIX,
    daily_activity,
    event_slug_expr,
    first_active_day,
    one_row_per_day,
    per_customer_day,
    rollup_event_types,
)
from keepwell.metrics.localtime import local_day
from keepwell.metrics.period_activity import (
    calendar,
    covers,
    period_activity,
    period_neighbours,
)
from keepwell.metrics.registry import metric
from keepwell.metrics.segments import Filters, restrict, segment_keys
from keepwell.metrics.sources import Sources
from keepwell.metrics.usage_spells import activity_spells_from_events

__all__ = [
    "TENURE_BUCKETS",
    "active_customers",
    "activity_spells_from_events",
    "churn_by_tenure",
    "customer_usage",
    "feature_adoption",
    "lifecycle",
    "usage_frequency",
]


# -- shared helpers ------------------------------------------------------------------------


def _rate(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    return ibis.ifelse(den > 0, num.cast("float64") / den.cast("float64"), ibis.null("float64"))


def _frame(keys: ir.Table | None, by: Sequence[str], periods: ir.Table) -> ir.Table:
    """Every (group, period) pair: ``by`` groups of the segment crossed with the periods."""
    if by and keys is not None:
        return keys.select(*by).distinct().cross_join(periods)
    return periods


def _attach(
    frame: ir.Table, right: ir.Table, by: Sequence[str], cols: Sequence[str], key: str = "period"
) -> ir.Table:
    """Left-join ``cols`` of ``right`` onto ``frame`` by (``by``..., ``key``), nulls matching."""
    preds = [frame[c].identical_to(right[c]) for c in by] + [frame[key] == right[key]]
    j = frame.left_join(right, preds)
    return j.select(*[frame[c] for c in frame.columns], *[right[c] for c in cols])


def _report_columns(by: Sequence[str]) -> list[str]:
    return [*by, "period", "period_start", "period_end"]


def _median(t: ir.Table, group: Sequence[str], col: str) -> ir.Table:
    """Exact median of ``col`` per ``group`` (mean of the two middle values when even).

    Read off a histogram (one row per group and distinct value, with cumulative counts), so
    only the distinct values are sorted: cheap for counts like active days.
    """
    group = list(group)
    h = t.group_by([*group, col]).aggregate(_n=t.count())
    upto = ibis.window(group_by=group, order_by=h[col], rows=(None, 0))
    h = h.mutate(_cum=h._n.sum().over(upto), _tot=h._n.sum().over(ibis.window(group_by=group)))

    def value_at(pos: ir.IntegerValue) -> ir.FloatingValue:
        hit = (h._cum - h._n < pos) & (pos <= h._cum)
        return ibis.ifelse(hit, h[col].cast("float64"), ibis.null("float64")).max()

    return h.group_by(group).aggregate(
        median=(value_at((h._tot + 1) // 2) + value_at((h._tot + 2) // 2)) / 2.0
    )


def _report_rows(t: ir.Table, periods: Sequence[LocalPeriod]) -> ir.Table:
    """Rows of a :func:`period_activity` table in the reporting ``periods`` (idx 0..n-1)."""
    return t.filter(t.idx >= 0, t.idx < len(periods))


# -- 1. active customers -------------------------------------------------------------------


def _covering_intervals(days: ir.Table, group: Sequence[str]) -> ir.Table:
    """Each active day with the next active day of the same entity (epoch days): _s, _next."""
    w = ibis.window(group_by=list(group), order_by=days.day)
    return days.mutate(
        _s=days.day.epoch_days().cast("int64"),
        _next=days.day.lead().over(w).epoch_days().cast("int64"),
    )


def _trailing_actives(
    iv: ir.Table, periods: Sequence[LocalPeriod], window: int, by: Sequence[str]
) -> ir.Table:
    """Distinct actives in the ``window`` days ending on each period's last day.

    Each active day d of an entity covers the anchors d .. min(next active day, d + window) - 1;
    the covering intervals of one entity never overlap, so the number of entities active in
    the window ending at anchor a = #interval starts <= a - #interval ends <= a. This needs one
    pass over the active days (no rolling distinct count). ``iv`` comes from
    :func:`_covering_intervals`. Columns: [by...], period, n.
    """
    cap = iv._s + window
    iv = iv.mutate(_e=ibis.ifelse(iv._next.fill_null(cap) < cap, iv._next.fill_null(cap), cap))
    starts = iv.group_by([*by, iv._s.name("x")]).aggregate(delta=iv.count().cast("int64"))
    ends = iv.group_by([*by, iv._e.name("x")]).aggregate(delta=-iv.count().cast("int64"))
    deltas = starts.union(ends)
    anchors = periods_table(periods)
    anchors = anchors.select("period", a=anchors.end_day.epoch_days().cast("int64") - 1)
    j = deltas.join(anchors, deltas.x <= anchors.a)
    return j.group_by([*by, "period"]).aggregate(n=j.delta.sum().cast("int64"))


def _period_and_window_actives(
    days: ir.Table,
    periods: Sequence[LocalPeriod],
    windows: dict[str, int],
    by: Sequence[str],
    ent: Sequence[str],
) -> ir.Table:
    """Per period: active entity-days, distinct actives, and distinct actives in each named
    window of ``n`` days ending on the period's last day. Columns: [by...], period,
    active_days, period_actives, <name>...

    For windows no longer than the shortest period, each window lies inside its period, so
    one hash join of the active days to the periods' days (flagged per window) and one
    aggregate per entity and period give everything (no sort, unlike :func:`_trailing_actives`,
    which also handles windows reaching into earlier periods).
    """
    lengths = sorted(set(windows.values()))
    flags = [f"in_{n}" for n in lengths]
    j = days.join(period_days_in_windows(periods, lengths), "day")
    per = j.group_by([*by, *ent, "period"]).aggregate(
        _days=j.count(), **{f"_{f}": j[f].max() for f in flags}
    )
    return per.group_by([*by, "period"]).aggregate(
        active_days=per._days.sum().cast("int64"),
        period_actives=per.count().cast("int64"),
        **{name: per[f"_in_{n}"].sum().cast("int64") for name, n in windows.items()},
    )


@metric(
    "active_customers",
    title="Active customers (DAU / WAU / MAU) and stickiness",
    needs={"events"},
    params={"start", "end", "period", "mau_days", "wau_days", "unit", "filters", "by"},
)
def active_customers(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    mau_days: int = 28,
    wau_days: int = 7,
    unit: str = "customer",
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Daily, weekly and monthly active customers (or users) and stickiness, per period.

    * ``dau`` = average over the period's calendar days of the number of active customers that
      day (days with nobody active count as 0): sum of active customer-days / days.
    * ``wau`` = distinct customers active in the ``wau_days`` (7) days ending on the period's
      last day; ``mau`` = the same over ``mau_days`` (default 28, four whole weeks, so weekday
      mix does not move it; 30 is the other common choice).
    * ``stickiness`` = dau / mau (null when mau is 0): the share of the month's actives that
      use the product on an average day. 1.0 = everyone daily; 1/28 = each once a month.
    * ``period_actives`` = distinct customers active at all within the calendar period.

    ``unit="user"`` counts distinct (customer_id, user_id) users from raw events instead
    (events without a user_id are left out). Units: counts; dau and stickiness are floats.
    Columns: [by...], period, period_start, period_end, days, dau, wau, mau, stickiness,
    period_actives.
    """
    ps = local_periods(start, end, period, tz=src.timezone)
    longest = max(mau_days, wau_days)
    first = min(ps[0].first_day, ps[0].end_day - timedelta(days=longest))
    keys = segment_keys(src, filters=filters, by=by)
    out = _frame(keys, by, periods_table(ps))
    span = {"start": start, "end": end, "period": period}
    if covers(src, **span, windows=(wau_days, mau_days), unit=unit):
        pa = period_activity(src, **span, windows=(wau_days, mau_days))
        rows = _report_rows(restrict(pa, keys), ps)
        counts = rows.group_by([*by, "idx"]).aggregate(
            active_days=rows.active_days.sum().cast("int64"),
            period_actives=rows.count().cast("int64"),
            wau=(rows[f"d_{wau_days}"] > 0).sum().cast("int64"),
            mau=(rows[f"d_{mau_days}"] > 0).sum().cast("int64"),
        )
        return _active_columns(
            _attach(out, counts, by, ["active_days", "period_actives", "wau", "mau"], "idx"), by
        )
    d = restrict(daily_activity(src, first_day=first, end_day=ps[-1].end_day, unit=unit), keys)
    ent = ["customer_id", "user_id"] if unit == "user" else ["customer_id"]
    days = d.select(*by, *ent, "day")
    days = days if one_row_per_day(src, d, unit=unit) else days.distinct()
    if longest <= min((p.end_day - p.first_day).days for p in ps):
        counts = _period_and_window_actives(days, ps, {"wau": wau_days, "mau": mau_days}, by, ent)
        out = _attach(out, counts, by, ["active_days", "period_actives", "wau", "mau"])
    else:
        dd = days.join(day_periods(ps), "day")
        dau = dd.group_by([*by, "period"]).aggregate(active_days=dd.count().cast("int64"))
        pa = dd.select(*by, *ent, "period").distinct()
        pa = pa.group_by([*by, "period"]).aggregate(period_actives=pa.count().cast("int64"))
        iv = _covering_intervals(days, [*by, *ent])
        wau = _trailing_actives(iv, ps, wau_days, by).rename(wau="n")
        mau = _trailing_actives(iv, ps, mau_days, by).rename(mau="n")
        out = _attach(out, dau, by, ["active_days"])
        out = _attach(out, pa, by, ["period_actives"])
        out = _attach(out, wau, by, ["wau"])
        out = _attach(out, mau, by, ["mau"])
    return _active_columns(out, by)


def _active_columns(out: ir.Table, by: Sequence[str]) -> ir.Table:
    """active_customers' output from per-period active_days, period_actives, wau, mau."""
    out = out.mutate(
        dau=out.active_days.fill_null(0).cast("float64") / out.days.cast("float64"),
        wau=out.wau.fill_null(0).cast("int64"),
        mau=out.mau.fill_null(0).cast("int64"),
        period_actives=out.period_actives.fill_null(0).cast("int64"),
    )
    out = out.mutate(stickiness=_rate(out.dau, out.mau))
    return out.select(
        *_report_columns(by), "days", "dau", "wau", "mau", "stickiness", "period_actives"
    ).order_by([*by, "period_start"])


# -- 2. usage frequency --------------------------------------------------------------------

FREQUENCY_CLASSES = ("daily", "weekly", "monthly", "less_than_monthly")


def _usage(
    src: Sources,
    *,
    anchors: Sequence[tuple[str, date]],
    window_days: int,
    lookback_days: int,
    daily_min: int,
    weekly_min: int,
    monthly_min: int,
    filters: Filters | None,
    by: Sequence[str],
) -> tuple[ir.Table, ir.Table | None]:
    """Per (customer, anchor) usage in the trailing windows, for customers active in the
    lookback. Columns: [by...], customer_id, key, active_days, events, active_days_lookback,
    frequency."""
    _check_lookback(window_days, lookback_days)
    first = min(a for _, a in anchors) - timedelta(days=lookback_days)
    last = max(a for _, a in anchors)
    keys = segment_keys(src, filters=filters, by=by)
    d = daily_activity(src, first_day=first, end_day=last)
    d = per_customer_day(src, d.select("customer_id", "day", "events"))
    d = restrict(d, keys)
    cal = trailing_days(anchors, [window_days, lookback_days])
    j = d.join(cal, "day")
    short = j[f"in_{window_days}"]
    u = j.group_by([*by, "customer_id", "key"]).aggregate(
        active_days=short.sum().cast("int64"),
        events=(j.events * short).sum().cast("int64"),
        active_days_lookback=j.count().cast("int64"),
    )
    u = u.mutate(frequency=_frequency(u.active_days, daily_min, weekly_min, monthly_min))
    return u, keys


def _check_lookback(window_days: int, lookback_days: int) -> None:
    if lookback_days < window_days:
        raise InvalidInput(
            f"the lookback ({lookback_days} days) is shorter than the window ({window_days})",
            field="lookback_days",
            expected=f"at least {window_days}",
        )


def _frequency(
    active_days: ir.IntegerValue, daily_min: int, weekly_min: int, monthly_min: int
) -> ir.StringValue:
    return ibis.cases(
        (active_days >= daily_min, "daily"),
        (active_days >= weekly_min, "weekly"),
        (active_days >= monthly_min, "monthly"),
        else_="less_than_monthly",
    )


def _usage_population(
    pa: ir.Table,
    nav: ir.Table,
    periods: Sequence[LocalPeriod],
    cal: Sequence[LocalPeriod],
    window_days: int,
    lookback_days: int,
    by: Sequence[str],
) -> ir.Table:
    """Customers active in the ``lookback_days`` ending on each period's last day, with their
    active days in its last ``window_days``, from :func:`period_activity` rows ``pa`` and
    their :func:`period_neighbours` ``nav``.
    Columns: [by...], customer_id, idx, active_days.

    Active in period p: counted when its last active day there is in the lookback. Not active
    in p: in the population (with 0 active days) when its latest earlier period's last active
    day is -- that is a row q with no activity between q and p (next_idx > p).
    """
    since = {p.index: p.end_day - timedelta(days=lookback_days) for p in periods}
    bounds = ibis.memtable(
        {"p": list(since), "since": list(since.values())}, schema={"p": "int64", "since": "date"}
    )
    rows = _report_rows(pa, periods)
    at = rows.join(bounds, rows.idx == bounds.p)
    at = at.filter(at.last_day >= at.since).select(
        *by, "customer_id", "idx", active_days=at[f"d_{window_days}"]
    )
    pairs = [
        (q.index, p, day)
        for p, day in since.items()
        for q in cal
        if q.index < p and day < q.end_day
    ]
    if not pairs:  # no lookback reaches back before its own period
        return at
    pairs = ibis.memtable(
        {"q": [r[0] for r in pairs], "p": [r[1] for r in pairs], "since": [r[2] for r in pairs]},
        schema={"q": "int64", "p": "int64", "since": "date"},
    )
    gaps = nav.filter(nav.next_idx.isnull() | (nav.next_idx > nav.idx + 1))
    carry = gaps.join(pairs, gaps.idx == pairs.q)
    carry = carry.filter(
        carry.next_idx.isnull() | (carry.p < carry.next_idx), carry.last_day >= carry.since
    )
    carry = carry.select(*by, "customer_id", idx="p", active_days=ibis.literal(0, type="int64"))
    return at.union(carry)


def customer_usage(
    src: Sources,
    *,
    as_of: date,
    window_days: int = 28,
    lookback_days: int = 90,
    daily_min: int = 16,
    weekly_min: int = 4,
    monthly_min: int = 1,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Usage frequency per customer as of ``as_of`` (the drill-down of :func:`usage_frequency`).

    ``active_days`` / ``events``: active local days and events in the ``window_days`` (28)
    days before ``as_of``; ``active_days_lookback``: active days in the ``lookback_days`` (90)
    before it. Only customers with at least one active day in the lookback appear.
    ``frequency``: daily (active_days >= daily_min, 16), weekly (>= weekly_min, 4), monthly
    (>= monthly_min, 1), else less_than_monthly (not in the window, but in the lookback).
    Columns: [by...], customer_id, as_of, active_days, events, active_days_lookback, frequency.
    """
    u, _ = _usage(
        src,
        anchors=[("as_of", as_of)],
        window_days=window_days,
        lookback_days=lookback_days,
        daily_min=daily_min,
        weekly_min=weekly_min,
        monthly_min=monthly_min,
        filters=filters,
        by=by,
    )
    return u.select(
        *by,
        "customer_id",
        as_of=ibis.literal(as_of, type="date"),
        active_days=u.active_days,
        events=u.events,
        active_days_lookback=u.active_days_lookback,
        frequency=u.frequency,
    ).order_by([*by, "customer_id"])


@metric(
    "usage_frequency",
    title="Usage frequency spectrum per segment",
    needs={"events"},
    params={
        "start",
        "end",
        "period",
        "window_days",
        "lookback_days",
        "daily_min",
        "weekly_min",
        "monthly_min",
        "filters",
        "by",
    },
)
def usage_frequency(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    window_days: int = 28,
    lookback_days: int = 90,
    daily_min: int = 16,
    weekly_min: int = 4,
    monthly_min: int = 1,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """The usage-frequency spectrum per segment, as of the end of each period.

    Population: customers with at least one active day in the ``lookback_days`` (90) ending on
    the period's last day (customers idle longer are not "users" any more: see churn). Each is
    classed by its active days in the last ``window_days`` (28): **daily** >= ``daily_min``
    (16: four days a week, i.e. most working days -- business products are used on weekdays,
    so 20 of 28 would call almost no account daily), **weekly** >= ``weekly_min`` (4),
    **monthly** >= ``monthly_min`` (1), **less than monthly** = 0 in the window but active in
    the lookback (:func:`customer_usage`).

    Columns: [by...], period, period_start, period_end, customers, daily, weekly, monthly,
    less_than_monthly (counts), share_<class> (count / customers, null when no customers),
    median_active_days (median active days in the window over the population; the mean of the
    two middle values when even), forgotten_zone (true when median_active_days <
    ``monthly_min``: the segment's typical customer uses the product less than once a month,
    PRODUCT.md section 1; null when no customers).
    """
    _check_lookback(window_days, lookback_days)
    ps = local_periods(start, end, period, tz=src.timezone)
    span = {"start": start, "end": end, "period": period}
    if covers(src, **span, windows=(window_days,), lookback_days=lookback_days):
        keys = segment_keys(src, filters=filters, by=by)
        pa = restrict(period_activity(src, **span, windows=(window_days,)), keys)
        nav = restrict(period_neighbours(src, **span), keys)
        u = _usage_population(pa, nav, ps, calendar(**span), window_days, lookback_days, by)
        u = u.mutate(frequency=_frequency(u.active_days, daily_min, weekly_min, monthly_min))
        u = u.join(periods_table(ps).select("idx", "period"), "idx")
    else:
        u, keys = _usage(
            src,
            anchors=[(p.label, p.end_day) for p in ps],
            window_days=window_days,
            lookback_days=lookback_days,
            daily_min=daily_min,
            weekly_min=weekly_min,
            monthly_min=monthly_min,
            filters=filters,
            by=by,
        )
        u = u.rename(period="key")
    counts = u.group_by([*by, "period"]).aggregate(
        customers=u.count().cast("int64"),
        **{c: (u.frequency == c).sum().cast("int64") for c in FREQUENCY_CLASSES},
    )
    med = _median(u, [*by, "period"], "active_days").rename(median_active_days="median")
    out = _frame(keys, by, periods_table(ps))
    out = _attach(out, counts, by, ["customers", *FREQUENCY_CLASSES])
    out = _attach(out, med, by, ["median_active_days"])
    filled = {c: out[c].fill_null(0).cast("int64") for c in ("customers", *FREQUENCY_CLASSES)}
    out = out.mutate(**filled)
    out = out.mutate(
        **{f"share_{c}": _rate(out[c], out.customers) for c in FREQUENCY_CLASSES},
        forgotten_zone=ibis.ifelse(
            out.customers > 0, out.median_active_days < monthly_min, ibis.null("boolean")
        ),
    )
    return out.select(
        *_report_columns(by),
        "customers",
        *FREQUENCY_CLASSES,
        *[f"share_{c}" for c in FREQUENCY_CLASSES],
        "median_active_days",
        "forgotten_zone",
    ).order_by([*by, "period_start"])


# -- 3. feature adoption -------------------------------------------------------------------


@metric(
    "feature_adoption",
    title="Feature adoption per event type",
    needs={"events"},
    params={"start", "end", "period", "filters", "by"},
)
def feature_adoption(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Share of active customers that used each event type, per period (and segment).

    * ``active_customers`` = customers with at least one event in the period;
    * ``adopters`` = those with at least one event of the type in the period;
    * ``adoption_rate`` = adopters / active_customers.

    Long format, one row per (group, period, event type) with at least one adopter (types
    nobody used in a period are absent). ``event`` is the event type (normalised name, see
    :func:`keepwell.metrics.daily.event_slug`).
    Columns: [by...], period, period_start, period_end, event, adopters, active_customers,
    adoption_rate.
    """
    ps = local_periods(start, end, period, tz=src.timezone)
    keys = segment_keys(src, filters=filters, by=by)
    cal = day_periods(ps)
    span = {"first_day": ps[0].first_day, "end_day": ps[-1].end_day}
    if covers(src, start=start, end=end, period=period):
        types = rollup_event_types(src)
        pa = period_activity(src, start=start, end=end, period=period)
        per = _report_rows(restrict(pa, keys), ps)
        wide = per.group_by([*by, "idx"]).aggregate(
            _active=per.count().cast("int64"),
            **{t: (per[f"{COUNT_PREFIX}{t}"] > 0).sum().cast("int64") for t in types},
        )
        wide = wide.join(periods_table(ps).select("idx", "period"), "idx")
        parts = [
            wide.select(
                *by,
                "period",
                event=ibis.literal(t, type="string"),
                adopters=wide[t],
                active_customers=wide._active,
            )
            for t in types
        ] or [
            wide.select(
                *by,
                "period",
                event=ibis.literal("", type="string"),
                adopters=ibis.literal(0, type="int64"),
                active_customers=wide._active,
            )
        ]
        long = ibis.union(*parts) if len(parts) > 1 else parts[0]
    else:
        d = restrict(daily_activity(src, **span), keys).join(cal, "day")
        active = d.select(*by, "customer_id", "period").distinct()
        active = active.group_by([*by, "period"]).aggregate(
            active_customers=active.count().cast("int64")
        )
        e = src.events
        e = e.filter(e.occurred_at >= ps[0].start, e.occurred_at < ps[-1].end)
        e = e.select(
            "customer_id",
            day=local_day(e.occurred_at, tz=src.timezone, backend=src.backend),
            event=event_slug_expr(e.event),
        )
        used = restrict(e, keys).join(cal, "day").select(*by, "customer_id", "period", "event")
        used = used.distinct()
        adopt = used.group_by([*by, "period", "event"]).aggregate(
            adopters=used.count().cast("int64")
        )
        preds = [adopt[c].identical_to(active[c]) for c in by] + [adopt.period == active.period]
        long = adopt.join(active, preds).select(
            *[adopt[c] for c in by],
            adopt.period,
            adopt.event,
            adopt.adopters,
            active.active_customers,
        )
    long = long.filter(long.adopters > 0)
    pt = periods_table(ps).select("period", "period_start", "period_end", "first_day")
    out = long.join(pt, "period")
    return out.select(
        *_report_columns(by),
        "event",
        "adopters",
        "active_customers",
        adoption_rate=_rate(out.adopters, out.active_customers),
    ).order_by([*by, "period_start", "event"])


# -- 4. lifecycle --------------------------------------------------------------------------


@metric(
    "lifecycle",
    title="Lifecycle: new, returning, resurrecting, dormant",
    needs={"events"},
    params={"start", "end", "period", "filters", "by"},
)
def lifecycle(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str = P.Period.month,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """PostHog-style lifecycle counts per period (a customer is active in a period when it has
    an event on any of its local days):

    * ``new``: active, and its first event ever falls in this period;
    * ``returning``: active in this period and in the previous one;
    * ``resurrecting``: active in this period, not in the previous one, but some time before;
    * ``dormant``: active in the previous period, not in this one. Reported as a positive count
      (charts usually draw it below the axis as a negative bar).

    ``active`` = new + returning + resurrecting (every active customer is exactly one of them).
    Growth accounting: active(this) - active(previous) = new + resurrecting - dormant.
    Columns: [by...], period, period_start, period_end, new, returning, resurrecting, dormant,
    active.
    """
    ps = local_periods(start, end, period, tz=src.timezone, before=1)
    report = [p for p in ps if p.index >= 0]
    keys = segment_keys(src, filters=filters, by=by)
    out = _frame(keys, by, periods_table(report))
    if covers(src, start=start, end=end, period=period):
        pa = restrict(period_neighbours(src, start=start, end=end, period=period), keys)
        cur = _report_rows(pa, report)
        had_prev = cur.prev_idx == cur.idx - 1
        is_new = cur.prev_idx.isnull()
        states = cur.group_by([*by, "idx"]).aggregate(
            new=is_new.sum().cast("int64"),
            returning=had_prev.fill_null(False).sum().cast("int64"),
            resurrecting=(cur.prev_idx < cur.idx - 1).fill_null(False).sum().cast("int64"),
        )
        # dormant in p: active in p - 1 and not in p
        last = pa.filter(pa.idx >= -1, pa.idx < len(report) - 1)
        last = last.filter(last.next_idx.isnull() | (last.next_idx > last.idx + 1))
        dormant = last.group_by([*by, (last.idx + 1).name("idx")]).aggregate(
            dormant=last.count().cast("int64")
        )
        return _lifecycle_columns(out, states, dormant, by)
    d = restrict(daily_activity(src, first_day=ps[0].first_day, end_day=ps[-1].end_day), keys)
    cal = day_periods(ps)
    act = d.join(cal, "day").select(*by, "customer_id", "idx").distinct()
    prev = act.select(*by, p_customer="customer_id", p_idx=act.idx + 1, p_flag=ibis.literal(1))
    on_prev = [act[c].identical_to(prev[c]) for c in by] + [
        act.customer_id == prev.p_customer,
        act.idx == prev.p_idx,
    ]
    cur = act.left_join(prev, on_prev).select(
        *[act[c] for c in by], act.customer_id, act.idx, had_prev=prev.p_flag.notnull()
    )
    first = first_active_day(src, end_day=ps[-1].end_day)
    first = first.select("customer_id", first_ever=first.first_day)
    pt = periods_table(ps).select("idx", p_first=ibis._.first_day)
    cur = cur.join(first, "customer_id").join(pt, "idx")
    cur = cur.filter(cur.idx >= 0)
    is_new = cur.first_ever >= cur.p_first
    states = cur.group_by([*by, "idx"]).aggregate(
        new=ibis.ifelse(is_new, 1, 0).sum().cast("int64"),
        returning=ibis.ifelse(~is_new & cur.had_prev, 1, 0).sum().cast("int64"),
        resurrecting=ibis.ifelse(~is_new & ~cur.had_prev, 1, 0).sum().cast("int64"),
    )
    nxt = act.select(*by, n_customer="customer_id", n_idx=act.idx - 1, n_flag=ibis.literal(1))
    on_next = [act[c].identical_to(nxt[c]) for c in by] + [
        act.customer_id == nxt.n_customer,
        act.idx == nxt.n_idx,
    ]
    gone = act.left_join(nxt, on_next).filter(lambda t: t.n_flag.isnull())
    gone = gone.select(*[gone[c] for c in by], idx=gone.idx + 1)
    dormant = gone.group_by([*by, "idx"]).aggregate(dormant=gone.count().cast("int64"))
    return _lifecycle_columns(out, states, dormant, by)


def _lifecycle_columns(
    out: ir.Table, states: ir.Table, dormant: ir.Table, by: Sequence[str]
) -> ir.Table:
    """lifecycle's output: the (group, period) frame with the state and dormant counts."""
    out = _attach(out, states, by, ["new", "returning", "resurrecting"], key="idx")
    out = _attach(out, dormant, by, ["dormant"], key="idx")
    out = out.mutate(
        **{c: out[c].fill_null(0).cast("int64") for c in ("new", "returning", "resurrecting")},
        dormant=out.dormant.fill_null(0).cast("int64"),
    )
    out = out.mutate(active=out.new + out.returning + out.resurrecting)
    return out.select(
        *_report_columns(by), "new", "returning", "resurrecting", "dormant", "active"
    ).order_by([*by, "period_start"])


# -- 5. churn by tenure --------------------------------------------------------------------

TENURE_BUCKETS: tuple[tuple[str, str, int, int | None], ...] = (
    ("tenure", "0-1 months", 0, 1),
    ("tenure", "1-3 months", 1, 3),
    ("tenure", "3-6 months", 3, 6),
    ("tenure", "6-12 months", 6, 12),
    ("tenure", "12-24 months", 12, 24),
    ("tenure", "24+ months", 24, None),
    ("stage", "onboarding", 0, 1),
    ("stage", "adoption", 1, 3),
    ("stage", "established", 3, 12),
    ("stage", "loyal", 12, None),
)
"""(dimension, bucket, from month, to month or None = open): tenure at churn in whole months."""


USAGE_AT_CHURN = ("daily", "weekly", "monthly", "none_in_28_days")
"""Usage class in the 28 days before a churn (same thresholds as :func:`usage_frequency`)."""


def _usage_at_churn(
    src: Sources, j: ir.Table, by: Sequence[str], *, start: date, end: date
) -> ir.Table:
    """Churn events per window by the customer's usage class in the 28 local days before the
    local day of the churn: [by...], period, churned, reached (0), dimension, bucket,
    bucket_order."""
    e = j.ended_at
    ends = j.filter((e > j.period_start) & (e <= j.period_end))
    ends = ends.select(
        *by,
        "period",
        "customer_id",
        "ended_at",
        end_day=local_day(ends.ended_at, tz=src.timezone, backend=src.backend)
        .epoch_days()
        .cast("int64"),
    )
    d = daily_activity(
        src, first_day=start - timedelta(days=30), end_day=end + timedelta(days=2)
    ).select("customer_id", n=ibis._.day.epoch_days().cast("int64"))
    hit = ends.join(
        d,
        (ends.customer_id == d.customer_id) & (d.n >= ends.end_day - 28) & (d.n < ends.end_day),
    )
    keys = [*by, "period", "customer_id", "ended_at"]
    active = hit.group_by(keys).aggregate(days=hit.n.nunique())
    preds = [ends[c].identical_to(active[c]) for c in by] + [
        ends[c] == active[c] for c in ("period", "customer_id", "ended_at")
    ]
    per = ends.left_join(active, preds).select(
        *[ends[c] for c in by], ends.period, days=active.days.fill_null(0)
    )
    per = per.mutate(
        bucket=ibis.cases(
            (per.days >= 16, "daily"),
            (per.days >= 4, "weekly"),
            (per.days >= 1, "monthly"),
            else_="none_in_28_days",
        )
    )
    counts = per.group_by([*by, "period", "bucket"]).aggregate(churned=per.count().cast("int64"))
    order = ibis.cases(
        *[(counts.bucket == c, len(TENURE_BUCKETS) + i) for i, c in enumerate(USAGE_AT_CHURN)],
        else_=-1,
    )
    return counts.select(
        *by,
        "period",
        "churned",
        reached=ibis.literal(0, type="int64"),  # not tracked for usage classes
        dimension=ibis.literal("usage"),
        bucket="bucket",
        bucket_order=order.cast("int64"),
    )


@metric(
    "churn_by_tenure",
    title="Churn by tenure and lifecycle stage",
    needs={"subscriptions"},
    params={
        "start",
        "end",
        "period",
        "grace_days",
        "activity",
        "inactivity_days",
        "filters",
        "by",
    },
)
def churn_by_tenure(
    src: Sources,
    *,
    start: date,
    end: date,
    period: P.Period | str | None = None,
    grace_days: int = 7,
    activity: str = "subscriptions",
    inactivity_days: int = 30,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Where customers leave: churn counts and rates by tenure bucket and lifecycle stage.

    Spells come from subscriptions (:func:`keepwell.metrics.activity.spells`, with the grace
    gap) or, with ``activity="events"``, from usage alone
    (:func:`activity_spells_from_events`). **Tenure** at a moment = time since the start of
    the spell (the current continuous relationship), counted in calendar months.

    For each window -- the whole range [start, end), or each period when ``period`` is given --
    and each bucket [a, b) months:

    * ``churned`` = spells that end in the window (end in (w0, w1], as in
      :mod:`keepwell.metrics.churn`) with tenure at the end in [a, b);
    * ``reached`` = spells that were in the bucket at some moment of the window: tenure a was
      reached (start + a months <= end of spell and <= w1) and the spell was still in the bucket
      after w0 (min(start + b months, end of spell) > w0);
    * ``churn_rate`` = churned / reached: the chance that a customer who was in this tenure
      band during the window left while in it (null when reached is 0);
    * ``share_of_churned`` = churned / all churned of the same dimension and window.

    Dimensions: ``tenure`` (0-1, 1-3, 3-6, 6-12, 12-24, 24+ months), ``stage``
    (onboarding < 1 month, adoption 1-3, established 3-12, loyal 12+) and ``usage``: the
    customer's usage class in the 28 local days before the churn day (daily >= 16 active days,
    weekly >= 4, monthly >= 1, none_in_28_days; ``reached`` is 0 (not tracked) and ``churn_rate``
    null there,
    ``share_of_churned`` says how many leavers had stopped using the product). How to read it: the
    bucket with the largest ``share_of_churned`` is where most customers are lost; the highest
    ``churn_rate`` is where a customer is most at risk (a small early bucket can have a high
    rate but a small share). Counts are churn events: a customer who leaves twice counts twice.
    Columns: [by...], period, period_start, period_end, dimension, bucket, bucket_order,
    churned, reached, churn_rate, share_of_churned.
    """
    if activity == "subscriptions":
        sp = spells(src, grace_days=grace_days)
    elif activity == "events":
        sp = activity_spells_from_events(src, inactivity_days=inactivity_days)
    else:
        raise InvalidInput(
            f"unknown activity {activity!r}", field="activity", expected="subscriptions or events"
        )
    keys = segment_keys(src, filters=filters, by=by)
    sp = restrict(sp, keys)
    if period is None:
        w0, w1 = P.to_utc_naive(start, src.timezone), P.to_utc_naive(end, src.timezone)
        wins = ibis.memtable(
            {
                "period": [f"{start.isoformat()}/{end.isoformat()}"],
                "period_start": [w0],
                "period_end": [w1],
            },
            schema={"period": "string", "period_start": "timestamp", "period_end": "timestamp"},
        )
    else:
        wins = periods_table(local_periods(start, end, period, tz=src.timezone))
        wins = wins.select("period", "period_start", "period_end")
    # each spell's band edges (start + n months) once, not once per window
    months = sorted({n for _d, _b, a, b in TENURE_BUCKETS for n in (a, b) if n})
    sp = sp.mutate(**{f"_m{n}": sp.started_at + ibis.interval(months=n) for n in months})
    j = sp.cross_join(wins)
    s, e = j.started_at, j.ended_at
    sums = {}
    for order, (_dimension, _bucket, a, b) in enumerate(TENURE_BUCKETS):
        lo = j[f"_m{a}"] if a else s
        in_band = e >= lo if b is None else (e >= lo) & (e < j[f"_m{b}"])
        out_of_band = e if b is None else ibis.ifelse(j[f"_m{b}"] < e, j[f"_m{b}"], e)
        churned = (e > j.period_start) & (e <= j.period_end) & in_band
        reached = (lo <= e) & (lo <= j.period_end) & (out_of_band > j.period_start)
        sums[f"_churned_{order}"] = ibis.ifelse(churned, 1, 0).sum().cast("int64")
        sums[f"_reached_{order}"] = ibis.ifelse(reached, 1, 0).sum().cast("int64")
    wide = j.group_by([*by, "period"]).aggregate(**sums)  # one pass for every bucket
    parts = [
        wide.select(
            *by,
            "period",
            churned=wide[f"_churned_{order}"],
            reached=wide[f"_reached_{order}"],
            dimension=ibis.literal(dimension),
            bucket=ibis.literal(bucket),
            bucket_order=ibis.literal(order, type="int64"),
        )
        for order, (dimension, bucket, _a, _b) in enumerate(TENURE_BUCKETS)
    ]
    parts.append(_usage_at_churn(src, j, by, start=start, end=end))
    counts = ibis.union(*parts)
    frame = _frame(keys, by, wins)
    labels = [(t[0], t[1]) for t in TENURE_BUCKETS] + [("usage", c) for c in USAGE_AT_CHURN]
    buckets = ibis.memtable(
        {
            "dimension": [d for d, _ in labels],
            "bucket": [b for _, b in labels],
            "bucket_order": list(range(len(labels))),
        },
        schema={"dimension": "string", "bucket": "string", "bucket_order": "int64"},
    )
    frame = frame.cross_join(buckets)
    preds = [frame[c].identical_to(counts[c]) for c in by] + [
        frame.period == counts.period,
        frame.bucket_order == counts.bucket_order,
    ]
    out = frame.left_join(counts, preds).select(
        *[frame[c] for c in frame.columns], counts.churned, counts.reached
    )
    out = out.mutate(
        churned=out.churned.fill_null(0).cast("int64"),
        reached=out.reached.fill_null(0).cast("int64"),
    )
    total = out.churned.sum().over(ibis.window(group_by=[*by, "period", "dimension"]))
    out = out.mutate(
        churn_rate=_rate(out.churned, out.reached), share_of_churned=_rate(out.churned, total)
    )
    return out.select(
        *_report_columns(by),
        "dimension",
        "bucket",
        "bucket_order",
        "churned",
        "reached",
        "churn_rate",
        "share_of_churned",
    ).order_by([*by, "period_start", "bucket_order"])
