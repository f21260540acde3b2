"""period_activity: the per-customer, per-period activity table read from the rollup, when
metrics use it (``covers``), and that the five metrics reading it give the same results as
from the daily rows of raw events. On DuckDB and PostgreSQL.

The hand business (reporting zone Europe/Berlin: UTC+1 in winter, UTC+2 from 29 March 2026):
the report is 2026-01 .. 2026-03 by month, so the calendar starts 13 months earlier, at
2024-12 (idx -13; 2026-01 is idx 0); activity before 2024-12-01 (local) is the EARLIER row.

====  ========================================  ======================================
who   event (UTC)                               local Berlin day -> calendar idx
====  ========================================  ======================================
a     2024-06-10 10:00 "login"                  2024-06-10 -> EARLIER
      2024-06-11 10:00 "login"                  2024-06-11 -> EARLIER
      2026-01-02 09:00 "login"                  Jan 2  -> 0
      2026-01-02 15:00 "Login"                  Jan 2  -> 0 (same day, type login)
      2026-01-10 12:00 "report"                 Jan 10 -> 0
      2026-01-20 12:00 "login"                  Jan 20 -> 0
      2026-01-28 12:00 "Page View"              Jan 28 -> 0
      2026-01-31 22:30 "login"                  Jan 31 23:30 -> 0 (still January)
      2026-02-28 23:30 "report"                 **Mar 1** 00:30 -> 2 (nothing in Feb)
b     2025-12-15 08:00 "login"                  Dec 15 -> -1
      2026-01-31 23:30 "login"                  **Feb 1** 00:30 -> 1
      2026-02-27 08:00 "Page View"              Feb 27 -> 1
c     2024-11-30 10:00 "report"                 2024-11-30 -> EARLIER
      2024-11-30 23:30 "report"                 **2024-12-01** 00:30 -> -13 (first period)
      2025-03-05 08:00 "report"                 2025-03-05 -> -10
d     2026-03-02 09:00 "login"                  Mar 2 -> 2
      2026-04-30 21:30 "export"                 Apr 30 23:30 CEST: after the calendar
====  ========================================  ======================================
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keepwell.metrics import engagement as engagement_module
from keepwell.metrics import event_retention as event_retention_module
from keepwell.metrics.engagement import (
    active_customers,
    feature_adoption,
    lifecycle,
    usage_frequency,
)
from keepwell.metrics.event_retention import event_retention
from keepwell.metrics.period_activity import (
    EARLIER,
    HISTORY_DAYS,
    covers,
    period_activity,
    period_neighbours,
)
from keepwell.metrics.sources import Sources
from tests.metrics.conftest import rollup_frame
from tests.metrics.test_engagement import events

BERLIN = "Europe/Berlin"
Q1 = {"start": date(2026, 1, 1), "end": date(2026, 4, 1)}

HAND = (
    ("a", "login", "2024-06-10 10:00"),
    ("a", "login", "2024-06-11 10:00"),
    ("a", "login", "2026-01-02 09:00"),
    ("a", "Login", "2026-01-02 15:00"),
    ("a", "report", "2026-01-10 12:00"),
    ("a", "login", "2026-01-20 12:00"),
    ("a", "Page View", "2026-01-28 12:00"),
    ("a", "login", "2026-01-31 22:30"),
    ("a", "report", "2026-02-28 23:30"),
    ("b", "login", "2025-12-15 08:00"),
    ("b", "login", "2026-01-31 23:30"),
    ("b", "Page View", "2026-02-27 08:00"),
    ("c", "report", "2024-11-30 10:00"),
    ("c", "report", "2024-11-30 23:30"),
    ("c", "report", "2025-03-05 08:00"),
    ("d", "login", "2026-03-02 09:00"),
    ("d", "export", "2026-04-30 21:30"),
)

COLUMNS = [
    "customer_id",
    "idx",
    "active_days",
    "last_day",
    "d_7",
    "d_10",
    "d_28",
    "n_export",
    "n_login",
    "n_page_view",
    "n_report",
    "prev_idx",
    "next_idx",
]
# Windows are the period's last n days: d_n counts active days d >= end_day - n.
# January (end Feb 1): last 7 = Jan 25..31, last 10 = Jan 22..31, last 28 = Jan 4..31.
# February (end Mar 1): last 7 = Feb 22..28, last 10 = Feb 19..28, last 28 = all of February.
# March (end Apr 1): last 7 = Mar 25..31, last 10 = Mar 22..31, last 28 = Mar 4..31.
# December (end Jan 1): last 7 = Dec 25..31, last 10 = Dec 22..31, last 28 = Dec 4..31.
# EARLIER rows are in no period: every d_n is 0.
EXPECTED = [
    # a: Jun 10 and Jun 11 2024, one login each: 2 days, 2 logins, before the calendar
    ("a", EARLIER, 2, date(2024, 6, 11), 0, 0, 0, 0, 2, 0, 0, None, 0),
    # a, January: days Jan 2, 10, 20, 28, 31 = 5; last 7: Jan 28, 31 = 2; last 10: same = 2;
    # last 28: Jan 10, 20, 28, 31 = 4 (Jan 2 is before Jan 4); logins: 2 (Jan 2) + Jan 20 +
    # Jan 31 = 4; report Jan 10 = 1; page view Jan 28 = 1. Next active period: March (Feb gap)
    ("a", 0, 5, date(2026, 1, 31), 2, 2, 4, 0, 4, 1, 1, EARLIER, 2),
    # a, March: only Mar 1 (the 23:30 UTC Feb 28 event), outside every window
    ("a", 2, 1, date(2026, 3, 1), 0, 0, 0, 0, 0, 0, 1, 0, None),
    # b, December 2025: Dec 15 is in the last 28 days only
    ("b", -1, 1, date(2025, 12, 15), 0, 0, 1, 0, 1, 0, 0, None, 1),
    # b, February: Feb 1 (23:30 UTC Jan 31) and Feb 27; last 7 and 10: Feb 27; last 28: both
    ("b", 1, 2, date(2026, 2, 27), 1, 1, 2, 0, 1, 1, 0, -1, None),
    # c: Nov 30 local is before the calendar (EARLIER); 23:30 UTC is Dec 1: period -13
    ("c", EARLIER, 1, date(2024, 11, 30), 0, 0, 0, 0, 0, 0, 1, None, -13),
    ("c", -13, 1, date(2024, 12, 1), 0, 0, 0, 0, 0, 0, 1, EARLIER, -10),
    # c, March 2025: Mar 5 is in the last 28 days (Mar 4..31), not in the last 7 or 10
    ("c", -10, 1, date(2025, 3, 5), 0, 0, 1, 0, 0, 0, 1, -13, None),
    # d: Mar 2 (before Mar 4: in no window); the April export is after the calendar
    ("d", 2, 1, date(2026, 3, 2), 0, 0, 0, 0, 1, 0, 0, None, None),
]


def hand_frames() -> dict[str, pd.DataFrame]:
    return {"events": events(*HAND)}


def run(src: Sources, builder, **kw) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # driver deprecation chatter
        return src.con.execute(builder(src, **kw))


def rows(df: pd.DataFrame) -> list[tuple]:
    """The table as sorted tuples: dates as dates, nulls as None, numbers as int."""

    def plain(col: str, v):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if col == "last_day":
            return pd.Timestamp(v).date()
        return v if col == "customer_id" else int(v)

    out = [tuple(plain(c, v) for c, v in zip(COLUMNS, r, strict=True)) for r in df[COLUMNS].values]
    return sorted(out, key=lambda r: (r[0], r[1]))


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request) -> Iterator:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_ibis_con")
        return
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    yield con
    con.disconnect()


@pytest.fixture
def make_src(backend, tmp_path) -> Callable[..., Sources]:
    """Sources on the backend, reading the rollup of the events (``rollup=False``: raw events).

    ``rollup`` may also be a ready rollup table; ``rollup_timezone`` is the zone its days are
    counted in (default: the reporting zone). Each call gets its own tables.
    """
    calls = iter(range(1_000))

    def make(
        frames: dict[str, pd.DataFrame],
        *,
        rollup: bool | pa.Table = True,
        timezone: str = BERLIN,
        rollup_timezone: str | None = None,
    ) -> Sources:
        frames = dict(frames)
        n = next(calls)
        zone = rollup_timezone or timezone
        if rollup is True:
            frames["rollup"] = rollup_frame(frames["events"], timezone=zone, root=tmp_path / f"{n}")
        elif rollup is not False:
            frames["rollup"] = rollup
        src = Sources.from_frames(backend, frames, timezone=timezone, prefix=f"kw_pa{n}_")
        if rollup is not False:
            src.extra["rollup_timezone"] = zone
        return src

    return make


# -- the table, by hand --------------------------------------------------------------------


def partial_rollup(frame: pd.DataFrame, root: Path) -> pa.Table:
    """A rollup with several rows per customer-day (partial aggregates, as appended by
    incremental refreshes): the rollups of the even and of the odd events, stacked."""
    halves = [frame.iloc[i::2].reset_index(drop=True) for i in (0, 1)]
    parts = [rollup_frame(h, timezone=BERLIN, root=root / f"half{i}") for i, h in enumerate(halves)]
    return pa.concat_tables(parts, promote_options="default")


@pytest.mark.parametrize("grain", ["one_row_per_day", "partial_rows"])
def test_period_activity_hand_computed(make_src, tmp_path, grain) -> None:
    frames = hand_frames()
    rollup = True if grain == "one_row_per_day" else partial_rollup(frames["events"], tmp_path)
    src = make_src(frames, rollup=rollup)
    if grain == "partial_rows":  # Jan 2 of a is on two rows (one per half)
        r = src.rollup
        days = src.con.execute(r.filter(r.customer_id == "a", r.day == date(2026, 1, 2)).count())
        assert days == 2
    got = run(src, period_activity, **Q1, period="month", windows=(10,))
    nav = run(src, period_neighbours, **Q1, period="month")
    assert list(nav.columns) == ["customer_id", "idx", "last_day", "prev_idx", "next_idx"]
    got = got.merge(nav.drop(columns="last_day"), on=["customer_id", "idx"], validate="1:1")
    assert len(got) == len(nav)
    assert rows(got) == EXPECTED
    assert HISTORY_DAYS == 366


def test_lifecycle_from_the_table_hand_computed(make_src) -> None:
    # Jan: a active, previous activity EARLIER -> resurrecting; b (Dec) gone -> dormant
    # Feb: b active after Dec -> resurrecting; a (Jan) gone -> dormant
    # Mar: a back after Jan -> resurrecting; d's first event ever -> new; b gone -> dormant
    want = {"2026-01": (0, 0, 1, 1), "2026-02": (0, 0, 1, 1), "2026-03": (1, 0, 1, 1)}
    for rollup in (False, True):
        out = run(make_src(hand_frames(), rollup=rollup), lifecycle, **Q1)
        got = {r.period: (r.new, r.returning, r.resurrecting, r.dormant) for r in out.itertuples()}
        assert got == want, f"rollup={rollup}"


# -- covers ----------------------------------------------------------------------------------


def test_covers(make_src) -> None:
    rolled = make_src(hand_frames())
    months = {**Q1, "period": "month"}
    assert covers(rolled, **months, windows=(7, 28))  # February (28 days) holds both windows
    assert covers(rolled, **months, windows=(7, 28), lookback_days=HISTORY_DAYS)
    # no rollup: the daily rows come from raw events
    assert not covers(make_src(hand_frames(), rollup=False), **months, windows=(7, 28))
    # a 28-day window does not fit in a week; 7 days do
    weeks = {"start": date(2026, 2, 2), "end": date(2026, 3, 2), "period": "week"}
    assert not covers(rolled, **weeks, windows=(28,))
    assert covers(rolled, **weeks, windows=(7,))
    # a lookback reaching before the calendar's HISTORY_DAYS
    assert not covers(rolled, **months, windows=(28,), lookback_days=HISTORY_DAYS + 1)
    # rollup days counted in another zone than the reporting zone
    utc = make_src(hand_frames(), rollup_timezone="UTC")
    assert not covers(utc, **months, windows=(7, 28))
    # users are not in the rollup
    assert not covers(rolled, **months, windows=(7, 28), unit="user")


# -- the metrics that read the table, by hand ----------------------------------------------


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
def test_active_customers_with_a_30_day_mau_in_months_of_30_days_or_more(make_src, rollup) -> None:
    # March and April 2026 are 31 and 30 days long: a 30-day window fits in each, so
    # covers() is true for the rollup and the table must carry d_30.
    # March (end Apr 1): MAU days Mar 2..31 -> d (Mar 2); a's Mar 1 is outside -> 1;
    #   WAU Mar 25..31 -> 0; period actives a, d -> 2; dau = 2 active days / 31
    # April (end May 1): MAU days Apr 1..30 -> d (Apr 30 23:30 local) -> 1; WAU Apr 24..30
    #   -> d -> 1; period actives 1; dau = 1 / 30
    src = make_src(hand_frames(), rollup=rollup)
    span = {"start": date(2026, 3, 1), "end": date(2026, 5, 1)}
    if rollup:
        assert covers(src, **span, period="month", windows=(7, 30))
    out = run(src, active_customers, **span, mau_days=30)
    got = {r.period: (r.wau, r.mau, r.period_actives) for r in out.itertuples()}
    assert got == {"2026-03": (0, 1, 2), "2026-04": (1, 1, 1)}
    assert list(out.dau) == pytest.approx([2 / 31, 1 / 30])


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
def test_usage_frequency_lookback_shorter_than_a_quarter(make_src, rollup) -> None:
    # Q2 2026 = Apr 1 .. Jun 30 (91 days, end Jul 1). Lookback 90 = Apr 2 .. Jun 30.
    # x: 2026-03-31 22:30 UTC = Apr 1 00:30 CEST, its only day: outside the lookback -> not in
    #    the population although active in the quarter.
    # y: Apr 2 -> in the population; window 28 = Jun 3 .. 30: 0 days -> less_than_monthly.
    frames = {"events": events(("x", "login", "2026-03-31 22:30"), ("y", "login", "2026-04-02"))}
    src = make_src(frames, rollup=rollup)
    span = {"start": date(2026, 4, 1), "end": date(2026, 7, 1), "period": "quarter"}
    if rollup:
        assert covers(src, **span, windows=(28,), lookback_days=90)
    out = run(src, usage_frequency, **span, lookback_days=90)
    got = out[["period", "customers", "daily", "weekly", "monthly", "less_than_monthly"]]
    assert got.values.tolist() == [["2026-Q2", 1, 0, 0, 0, 1]]
    assert out.median_active_days.tolist() == [0.0]
    assert out.forgotten_zone.tolist() == [True]


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
def test_usage_frequency_lookback_of_four_weeks_in_months(make_src, rollup) -> None:
    # lookback 28 ends on each month's last day and so never reaches an earlier month.
    # January (end Feb 1): lookback Jan 4..31: a (Jan 10, 20, 28, 31); window 7 = Jan 25..31:
    #   a has 2 days (Jan 28, 31) -> monthly (>= 1, < weekly_min 4)
    # February (end Mar 1): lookback Feb 1..28: b (Feb 1, 27); window Feb 22..28: 1 -> monthly
    # March (end Apr 1): lookback Mar 4..31: nobody (a Mar 1, d Mar 2 are before) -> 0
    src = make_src(hand_frames(), rollup=rollup)
    out = run(src, usage_frequency, **Q1, window_days=7, lookback_days=28)
    got = {r.period: (r.customers, r.monthly, r.less_than_monthly) for r in out.itertuples()}
    assert got == {"2026-01": (1, 1, 0), "2026-02": (1, 1, 0), "2026-03": (0, 0, 0)}
    median = out.median_active_days.tolist()
    assert median[:2] == [2.0, 1.0] and pd.isna(median[2])


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
def test_usage_frequency_lookback_as_long_as_the_window(make_src, rollup) -> None:
    # lookback_days == window_days is allowed (only a shorter lookback is refused).
    # January: lookback = window = Jan 4..31: a on Jan 10, 20, 28, 31 = 4 days -> weekly (>= 4)
    # February: Feb 1..28: b on Feb 1, 27 = 2 days -> monthly
    # March: Mar 4..31: nobody (a Mar 1, d Mar 2)
    src = make_src(hand_frames(), rollup=rollup)
    out = run(src, usage_frequency, **Q1, window_days=28, lookback_days=28)
    got = {r.period: (r.customers, r.weekly, r.monthly) for r in out.itertuples()}
    assert got == {"2026-01": (1, 1, 0), "2026-02": (1, 0, 1), "2026-03": (0, 0, 0)}


def test_a_replaced_rollup_is_read_anew(make_src, backend) -> None:
    # Rollup.attach replaces src.tables["rollup"] on a live Sources; period_activity (shared
    # per Sources on DuckDB) must then read the new rollup, not the one it first saw.
    src = make_src(hand_frames())
    assert len(run(src, period_activity, **Q1, period="month")) == len(EXPECTED)
    only_d = events(*[e for e in HAND if e[0] == "d"])
    other = make_src({"events": only_d})
    src.tables["rollup"] = other.rollup
    got = run(src, period_activity, **Q1, period="month")
    # d: one row, March (Mar 2); its April event is after the calendar
    assert got.customer_id.tolist() == ["d"]
    assert got.idx.tolist() == [2]


# -- old path == new path on a richer business ----------------------------------------------

NAMES = ("login", "Login", "Report Created", "export", "page-view")
INDUSTRIES = ("travel", "retail", "software", None)


def rich_frames() -> dict[str, pd.DataFrame]:
    """30 customers over 2024-01 .. 2026-08 (seeded): each active in a random subset of the
    months from a random first one (gaps), 1-11 events at any hour in an active month, and
    now and then a 23:30 UTC event on the month's last day (the next month in Berlin). Plus
    a customer without a customers row, and "qq", whose only event is on the first local day
    of 2026-Q2 (2026-03-31 22:30 UTC)."""
    rng = np.random.default_rng(7)
    months = pd.date_range("2024-01-01", "2026-08-01", freq="MS")
    customers, tags, rows = [], [], []
    for i in range(30):
        cid = f"c{i:02d}"
        customers.append((cid, INDUSTRIES[i % 4]))
        if i % 3 == 0:
            tags.append({"customer_id": cid, "tag": "vip"})
        first = int(rng.integers(0, len(months) - 3))
        p_active = rng.uniform(0.3, 0.95)
        for m in months[first:]:
            if rng.random() > p_active:
                continue
            n_days = m.days_in_month
            for _ in range(int(rng.integers(1, 12))):
                at = m + pd.Timedelta(
                    days=int(rng.integers(0, n_days)),
                    hours=int(rng.integers(0, 24)),
                    minutes=int(rng.choice([0, 30])),
                )
                rows.append((cid, str(rng.choice(NAMES)), at))
            if rng.random() < 0.3:
                rows.append((cid, "login", m + pd.offsets.MonthEnd(0) + pd.Timedelta("23:30:00")))
    rows += [
        ("c00", "export", pd.Timestamp("2024-02-10 12:00")),  # a duplicate event
        ("c00", "export", pd.Timestamp("2024-02-10 12:00")),
        ("zz", "login", pd.Timestamp("2026-02-03 08:00")),  # no customers row
        ("qq", "login", pd.Timestamp("2026-03-31 22:30")),
    ]
    customers.append(("qq", "travel"))
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": [c for c, _ in customers],
                "signup_at": pd.Timestamp("2024-01-01"),
                "industry": [ind for _, ind in customers],
                "country": "DE",
                "status": "active",
            }
        ),
        "customer_tags": pd.DataFrame(tags),
        "events": events(*rows),
    }


@pytest.fixture(scope="module")
def rich(tmp_path_factory) -> dict[str, pd.DataFrame]:
    frames = rich_frames()
    root = tmp_path_factory.mktemp("rich")
    frames["rollup"] = rollup_frame(frames["events"], timezone=BERLIN, root=root)
    return frames


@pytest.fixture(scope="module")
def both(backend, rich) -> tuple[Sources, Sources]:
    """(raw events, rollup) Sources of the rich business on the backend."""
    raw = {k: v for k, v in rich.items() if k != "rollup"}
    old = Sources.from_frames(backend, raw, timezone=BERLIN, prefix="kw_pa_raw_")
    new = Sources.from_frames(backend, rich, timezone=BERLIN, prefix="kw_pa_rolled_")
    new.extra["rollup_timezone"] = BERLIN
    return old, new


def test_rich_business_has_what_the_comparison_needs(rich) -> None:
    e = rich["events"]
    report_start = pd.Timestamp("2025-10-01")
    first = e.groupby("customer_id").occurred_at.min()
    assert (first < report_start - pd.Timedelta(days=HISTORY_DAYS)).sum() >= 5  # EARLIER rows
    history = report_start - pd.Timedelta(days=HISTORY_DAYS)
    assert ((first >= history) & (first < report_start)).any()  # first event in the calendar
    assert (e.occurred_at.dt.strftime("%H:%M") == "23:30").sum() >= 10  # next local day
    months = (
        e.assign(m=e.occurred_at.dt.to_period("M"))
        .groupby("customer_id")
        .m.agg(lambda m: (m.max() - m.min()).n + 1 - m.nunique())
    )
    assert (months > 0).sum() >= 10  # customers with gaps
    assert len({c for c in rich["rollup"].column_names if c.startswith("n_")}) == 4


R = {"start": date(2025, 10, 1), "end": date(2026, 7, 1)}  # Q4 2025 .. Q2 2026
DAYS = {"start": date(2026, 2, 20), "end": date(2026, 3, 12)}
BY = {"by": ["industry"]}
VIP = {"filters": {"tag": "vip"}}
ER = {**R, "period": "month"}

COMPARE = [
    pytest.param(active_customers, {**R, "period": "month", **BY}, id="active-month-by"),
    pytest.param(active_customers, {**R, "period": "quarter", **VIP}, id="active-quarter-vip"),
    pytest.param(
        active_customers,
        {**DAYS, "period": "day", "wau_days": 1, "mau_days": 1, **BY},
        id="active-day-by",
    ),
    pytest.param(usage_frequency, {**R, "period": "month", **BY}, id="usage-month-by"),
    pytest.param(
        usage_frequency, {**R, "period": "quarter", "lookback_days": 90}, id="usage-quarter-90"
    ),
    pytest.param(
        usage_frequency,
        {**R, "period": "month", "lookback_days": HISTORY_DAYS, **VIP},
        id="usage-month-366-vip",
    ),
    pytest.param(
        usage_frequency,
        {**DAYS, "period": "day", "window_days": 1, "lookback_days": 30, "weekly_min": 1},
        id="usage-day",
    ),
    pytest.param(feature_adoption, {**R, "period": "month", **BY}, id="adoption-month-by"),
    pytest.param(feature_adoption, {**R, "period": "quarter", **VIP}, id="adoption-quarter-vip"),
    pytest.param(feature_adoption, {**DAYS, "period": "day"}, id="adoption-day"),
    pytest.param(lifecycle, {**R, "period": "month", **BY}, id="lifecycle-month-by"),
    pytest.param(lifecycle, {**R, "period": "quarter"}, id="lifecycle-quarter"),
    pytest.param(lifecycle, {**R, "period": "week", **VIP}, id="lifecycle-week-vip"),
    pytest.param(lifecycle, {**DAYS, "period": "day"}, id="lifecycle-day"),
    pytest.param(
        event_retention,
        {**ER, "start_event": "login", "return_event": "export"},
        id="retention-first-on",
    ),
    pytest.param(
        event_retention,
        {**ER, "start_event": "Report Created", "return_event": "login"}
        | {"returning": "on_or_after"},
        id="retention-first-on-or-after",
    ),
    pytest.param(
        event_retention,
        {**ER, "start_event": "login", "return_event": "page-view", "cohort": "recurring", **BY},
        id="retention-recurring-on-by",
    ),
    pytest.param(
        event_retention,
        {**ER, "cohort": "recurring", "returning": "on_or_after", **VIP},
        id="retention-any-recurring-on-or-after-vip",
    ),
    pytest.param(event_retention, {**ER, "returning": "on_or_after"}, id="retention-any-first"),
    pytest.param(
        event_retention,
        {**R, "period": "quarter", "start_event": "export", "return_event": "login"},
        id="retention-quarter",
    ),
]


@pytest.mark.parametrize(("builder", "kw"), COMPARE)
def test_period_activity_path_equals_daily_rows_path(both, monkeypatch, builder, kw) -> None:
    old, new = both
    calls: list[Sources] = []

    def spying(builder):
        def spy(src: Sources, **params) -> ibis.Table:
            calls.append(src)
            return builder(src, **params)

        return spy

    for module in (engagement_module, event_retention_module):
        monkeypatch.setattr(module, "period_activity", spying(period_activity))
        monkeypatch.setattr(module, "period_neighbours", spying(period_neighbours))
    want = run(old, builder, **kw)
    assert calls == []  # raw events: the daily-rows path
    got = run(new, builder, **kw)
    assert calls and all(src is new for src in calls)  # the rollup: period_activity
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
