"""Per-customer behavioural features on a date grid: the input of the churn-risk model.

One wide row per (customer, as_of) for every customer *active* at as_of (a subscription in
force, with the grace gap; or, with ``activity="events"``, usage within the inactivity window).
Column by column definitions: ``docs/metrics/features.md``.

**Point in time.** A snapshot "as of D" is taken at local midnight at the start of day D in the
reporting time zone: every feature uses only data strictly before that instant (events on D
itself and later are ignored), so features never leak the future into a training label.
Trailing windows are whole local days: "the last 28 days" = D-28 .. D-1, "the previous 28"
= D-56 .. D-29.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd
from dateutil.relativedelta import relativedelta

from keepwell.errors import InvalidInput
from keepwell.metrics import periods as P
from keepwell.metrics.activity import bridged_subscriptions, spells
from keepwell.metrics.calendars import local_periods, trailing_days
from keepwell.metrics.daily import (
    COUNT_PREFIX,
    daily_activity,
    one_row_per_day,
    reads_months,
    reads_rollup,
)
from keepwell.metrics.daily import event_types as all_event_types
from keepwell.metrics.localtime import local_day
from keepwell.metrics.registry import metric
from keepwell.metrics.rollup_months import FEATURE_WINDOW, WINDOW_PREFIX
from keepwell.metrics.segments import Filters, restrict, segment_keys
from keepwell.metrics.sources import Sources
from keepwell.metrics.usage_spells import activity_spells_from_events

__all__ = ["as_of_dates", "customer_features"]


def as_of_dates(
    *,
    as_of: date | Sequence[date] | None = None,
    start: date | None = None,
    end: date | None = None,
    period: P.Period | str = P.Period.month,
) -> list[date]:
    """The snapshot dates: ``as_of`` itself, or the day after each period of [start, end).

    >>> as_of_dates(start=date(2026, 1, 1), end=date(2026, 4, 1))
    [datetime.date(2026, 2, 1), datetime.date(2026, 3, 1), datetime.date(2026, 4, 1)]
    """
    if as_of is not None:
        days = [as_of] if isinstance(as_of, date) else list(as_of)
        if not days:
            raise InvalidInput("no as_of dates given", field="as_of", expected="one or more dates")
        return sorted(set(days))
    if start is None or end is None:
        raise InvalidInput(
            "give as_of, or start and end for a grid of dates", field="as_of", expected="a date"
        )
    return [p.end_day for p in local_periods(start, end, period, tz="UTC")]


def _snapshots(days: list[date], tz: str, window_days: int) -> ir.Table:
    """as_of (date), key (text), as_of_at / window_at / lookback_at (naive UTC instants)."""
    df = pd.DataFrame(
        {
            "as_of": days,
            "key": [d.isoformat() for d in days],
            "as_of_at": [P.to_utc_naive(d, tz) for d in days],
            "window_at": [P.to_utc_naive(d - timedelta(days=window_days), tz) for d in days],
            "lookback_at": [P.to_utc_naive(d - timedelta(days=90), tz) for d in days],
        }
    )
    for col in ("as_of_at", "window_at", "lookback_at"):
        df[col] = pd.to_datetime(df[col]).astype("datetime64[us]")
    return ibis.memtable(
        df,
        schema={
            "as_of": "date",
            "key": "string",
            "as_of_at": "timestamp",
            "window_at": "timestamp",
            "lookback_at": "timestamp",
        },
    )


def _days_between(later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
    return (later.epoch_days() - earlier.epoch_days()).cast("int64")


def _change(cur: ir.NumericValue, prev: ir.NumericValue) -> tuple[ir.Value, ir.Value]:
    """(ratio, percent change) of cur vs prev; see docs/metrics/features.md for zeros."""
    c, p = cur.cast("float64"), prev.cast("float64")
    ratio = ibis.ifelse(prev > 0, c / p, ibis.null("float64"))
    pct = ibis.cases(
        (prev > 0, (c - p) * 100.0 / p),
        (cur == 0, ibis.literal(0.0, type="float64")),
        else_=ibis.null("float64"),
    )
    return ratio, pct


@metric(
    "features",
    title="Per-customer behavioural features",
    needs={"subscriptions", "events"},
    params={
        "start",
        "end",
        "period",
        "as_of",
        "window_days",
        "grace_days",
        "activity",
        "inactivity_days",
        "event_types",
        "filters",
        "by",
    },
)
def customer_features(
    src: Sources,
    *,
    as_of: date | Sequence[date] | None = None,
    start: date | None = None,
    end: date | None = None,
    period: P.Period | str = P.Period.month,
    window_days: int = 28,
    grace_days: int = 7,
    activity: str = "subscriptions",
    inactivity_days: int = 30,
    event_types: Sequence[str] | None = None,
    filters: Filters | None = None,
    by: Sequence[str] = (),
) -> ir.Table:
    """Wide per-customer features as of each snapshot date (see the module docstring).

    Snapshots: ``as_of`` (a date or a list), or the day after each period of [start, end)
    (end of January, February, ...). Rows: customers active at the snapshot instant.
    With W = ``window_days`` (28), columns:

    * customer_id, as_of (date), [by...];
    * ``tenure_days`` = as_of - local start day of the current activity spell;
      ``customer_age_days`` = as_of - local day of the first-ever start;
    * ``mrr_minor`` = sum of MRR (minor units) of subscription rows in force at the snapshot
      (a grace gap carries the last MRR; 0 for usage-only activity);
    * ``events_W`` / ``events_prev_W``: events in days D-W..D-1 / D-2W..D-W-1;
      ``events_ratio`` = events_W / events_prev_W; ``events_pct_change`` = 100 x (events_W -
      events_prev_W) / events_prev_W. Both null when the previous window is 0, except
      pct_change = 0 when both windows are 0;
    * ``active_days_W``, ``active_days_prev_W``, ``active_days_ratio``,
      ``active_days_pct_change``: the same for active local days;
    * ``days_since_last_event``: as_of - local day of the last event before the snapshot
      (1 = yesterday; null = never);
    * ``n<W>_<type>``: events of each type in the last W days (types from the rollup or the
      events, or the ``event_types`` given);
    * ``failed_invoices_90``: invoices with status ``failed`` issued in the 90 days before;
    * ``last_nps_score`` and ``days_since_last_nps``: the latest NPS answer before the
      snapshot (null = none);
    * ``tickets_W``: support tickets opened in the last W days.

    Duplicate events count as events (a day is active once); events before signup count.
    """
    days = as_of_dates(as_of=as_of, start=start, end=end, period=period)
    tz = src.timezone
    W = window_days
    snaps = _snapshots(days, tz, W)
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
    base = sp.join(snaps, (sp.started_at <= snaps.as_of_at) & (snaps.as_of_at < sp.ended_at))
    base = base.select(
        *[base[c] for c in by],
        base.customer_id,
        base.as_of,
        base.key,
        tenure_days=_days_between(
            base.as_of, local_day(base.started_at, tz=tz, backend=src.backend)
        ),
        customer_age_days=_days_between(
            base.as_of, local_day(base.first_started_at, tz=tz, backend=src.backend)
        ),
    )

    # MRR in force at the snapshot (grace gaps carry the last MRR)
    subs = bridged_subscriptions(src, grace_days=grace_days)
    m = subs.join(snaps, (subs.started_at <= snaps.as_of_at) & (snaps.as_of_at < subs.ended_at))
    mrr = m.group_by(["customer_id", "as_of"]).aggregate(mrr_minor=m.mrr_minor.sum())

    # events in the trailing windows, per type
    types = list(event_types) if event_types is not None else all_event_types(src)
    if W == FEATURE_WINDOW and all(d.day == 1 for d in days) and reads_months(src):
        win = _windows_from_months(src, days, types)
    else:
        win = _windows_from_days(src, days, types, W)

    # last active day before each snapshot: inside the 2W window it is ``last_recent`` (joined
    # below with the window counts); for the rest ("stale"), events and snapshots in one ordered
    # stream over those customers' history
    recent = win.filter(win.last_recent.notnull())
    stale = base.select("customer_id", "key", "as_of").anti_join(recent, ["customer_id", "key"])
    if reads_months(src) and all((d - d.replace(day=1)).days <= 2 * W for d in days):
        # a month's last active day stands for the month: a customer stale at a snapshot had
        # no event in the 2W days before it, which cover the snapshot's month up to it, so
        # whole earlier months are all it needs
        m = src.rollup_months
        m = m.filter(m.month < days[-1], m.active_days > 0)
        hist = m.select("customer_id", t=m.last_day.cast("date"))
    elif reads_rollup(src):
        r = src.rollup
        hist = r.filter(r.day < days[-1]).select("customer_id", t=r.day.cast("date"))
    else:
        hist = daily_activity(src, first_day=None, end_day=days[-1]).select("customer_id", t="day")
    hist = hist.semi_join(stale.select("customer_id").distinct(), "customer_id")
    hist = hist.mutate(is_snap=ibis.literal(0, type="int64"), key=ibis.null("string"))
    marks = stale.select(
        "customer_id", t=stale.as_of, is_snap=ibis.literal(1, type="int64"), key=stale.key
    )
    stream = hist.union(marks)
    w = ibis.window(
        group_by=stream.customer_id,
        order_by=[stream.t, stream.is_snap.desc()],
        rows=(None, 0),
    )
    stream = stream.mutate(
        last_day=ibis.ifelse(stream.is_snap == 0, stream.t, ibis.null("date")).max().over(w)
    )
    older = stream.filter(stream.is_snap == 1).select(
        "customer_id",
        "key",
        days_since_last_event=_days_between(stream.t, stream.last_day),
    )

    # billing, surveys, support
    inv = src.invoices
    inv = inv.filter(inv.status == "failed")
    ij = inv.join(snaps, (inv.issued_at >= snaps.lookback_at) & (inv.issued_at < snaps.as_of_at))
    failed = ij.group_by(["customer_id", "as_of"]).aggregate(
        failed_invoices_90=ij.count().cast("int64")
    )
    sv = src.surveys
    sv = sv.filter((sv.kind == "nps") & sv.score.notnull())
    sj = sv.join(snaps, sv.responded_at < snaps.as_of_at)
    sj = sj.mutate(
        _rn=ibis.row_number().over(
            ibis.window(
                group_by=[sj.customer_id, sj.as_of],
                order_by=[sj.responded_at.desc(), sj.score.desc()],
            )
        )
    )
    nps = sj.filter(sj._rn == 0).select(
        "customer_id",
        "as_of",
        last_nps_score=sj.score.cast("int64"),
        days_since_last_nps=_days_between(
            sj.as_of, local_day(sj.responded_at, tz=tz, backend=src.backend)
        ),
    )
    tk = src.tickets
    tj = tk.join(snaps, (tk.opened_at >= snaps.window_at) & (tk.opened_at < snaps.as_of_at))
    tickets = tj.group_by(["customer_id", "as_of"]).aggregate(tickets=tj.count().cast("int64"))

    out = base
    for right, on, cols in (
        (mrr, "as_of", ["mrr_minor"]),
        (
            win,
            "key",
            ["events_cur", "events_prev", "days_cur", "days_prev"]
            + [f"t_{i}" for i in range(len(types))]
            + ["last_recent"],
        ),
        (older, "key", ["days_since_last_event"]),
        (failed, "as_of", ["failed_invoices_90"]),
        (nps, "as_of", ["last_nps_score", "days_since_last_nps"]),
        (tickets, "as_of", ["tickets"]),
    ):
        jn = out.left_join(right, (out.customer_id == right.customer_id) & (out[on] == right[on]))
        out = jn.select(*[out[c] for c in out.columns], *[right[c] for c in cols])

    zero = ibis.literal(0, type="int64")
    ev_c, ev_p = out.events_cur.fill_null(zero).cast("int64"), out.events_prev.fill_null(zero)
    dy_c, dy_p = out.days_cur.fill_null(zero).cast("int64"), out.days_prev.fill_null(zero)
    ev_ratio, ev_pct = _change(ev_c, ev_p.cast("int64"))
    dy_ratio, dy_pct = _change(dy_c, dy_p.cast("int64"))
    return out.select(
        "customer_id",
        "as_of",
        *by,
        "tenure_days",
        "customer_age_days",
        mrr_minor=out.mrr_minor.fill_null(zero).cast("int64"),
        **{
            f"events_{W}": ev_c,
            f"events_prev_{W}": ev_p.cast("int64"),
            "events_ratio": ev_ratio,
            "events_pct_change": ev_pct,
            f"active_days_{W}": dy_c,
            f"active_days_prev_{W}": dy_p.cast("int64"),
            "active_days_ratio": dy_ratio,
            "active_days_pct_change": dy_pct,
        },
        days_since_last_event=ibis.coalesce(
            _days_between(out.as_of, out.last_recent), out.days_since_last_event
        ),
        **{f"n{W}_{t}": out[f"t_{i}"].fill_null(zero).cast("int64") for i, t in enumerate(types)},
        failed_invoices_90=out.failed_invoices_90.fill_null(zero).cast("int64"),
        last_nps_score=out.last_nps_score,
        days_since_last_nps=out.days_since_last_nps,
        **{f"tickets_{W}": out.tickets.fill_null(zero).cast("int64")},
    ).order_by(["as_of", *by, "customer_id"])


def _windows_from_days(src: Sources, days: list[date], types: list[str], W: int) -> ir.Table:
    """Per customer and snapshot (key): events, active days and events per type in the last
    W days and the W before, and the last active day in them (last_recent), from daily rows."""
    d = daily_activity(
        src,
        first_day=days[0] - timedelta(days=2 * W),
        end_day=days[-1],
        event_types=types,
    )
    cal = trailing_days([(d_.isoformat(), d_) for d_ in days], [W, 2 * W])
    j = d.join(cal, "day")
    # one row per (customer, snapshot, day) first, so active days are plain counts (the rollup
    # may hold several partial rows for a day; DISTINCT aggregates cost ~10x more)
    per_day_cols = {f"t_{i}": j[f"{COUNT_PREFIX}{t}"] for i, t in enumerate(types)}
    if one_row_per_day(src, d):
        per_day = j.select("customer_id", "key", "day", "events", cur=j[f"in_{W}"], **per_day_cols)
    else:
        per_day = j.group_by(["customer_id", "key", "day"]).aggregate(
            events=j.events.sum(),
            cur=j[f"in_{W}"].max(),
            **{name: col.sum() for name, col in per_day_cols.items()},
        )
    # both windows in one pass as sums of 0/1-flagged values: DuckDB's hash aggregate took
    # ~2x as long with the same sums as filtered aggregates (SUM(x) FILTER (WHERE ...))
    cur, prev = per_day.cur, 1 - per_day.cur
    return per_day.group_by(["customer_id", "key"]).aggregate(
        events_cur=(per_day.events * cur).sum(),
        events_prev=(per_day.events * prev).sum(),
        days_cur=cur.sum(),
        days_prev=prev.sum(),
        last_recent=per_day.day.max(),
        **{f"t_{i}": (per_day[f"t_{i}"] * cur).sum() for i in range(len(types))},
    )


def _windows_from_months(src: Sources, days: list[date], types: list[str]) -> ir.Table:
    """:func:`_windows_from_days` for snapshots on the first day of a month and the standard
    window, read from the month summaries: the last 28 days before the snapshot are the
    previous month's last 28, the 56 its ``d_56`` / ``e_56``. ``last_recent`` is that month's
    last active day (null when the customer was active only in the month before it: then the
    last active day comes from the older months, as for idle customers)."""
    prev = {d.isoformat(): d - relativedelta(months=1) for d in days}
    keys = ibis.memtable(
        {"key": list(prev), "month": list(prev.values())}, schema={"key": "string", "month": "date"}
    )
    m = src.rollup_months
    j = m.join(keys, m.month == keys.month)
    zero = ibis.literal(0, type="int64")
    w, span = FEATURE_WINDOW, 2 * FEATURE_WINDOW

    def col(name: str) -> ir.IntegerValue:
        return j[name].fill_null(zero) if name in m.columns else zero

    return j.select(
        "customer_id",
        "key",
        events_cur=col(f"e_{w}"),
        events_prev=col(f"e_{span}") - col(f"e_{w}"),
        days_cur=col(f"d_{w}"),
        days_prev=col(f"d_{span}") - col(f"d_{w}"),
        last_recent=j.last_day.cast("date"),
        **{f"t_{i}": col(f"{WINDOW_PREFIX}{t}") for i, t in enumerate(types)},
    )
