"""Engagement metrics: hand-computed values, on DuckDB and PostgreSQL, from raw events and from
the daily rollup (identical either way).

The shared business (reporting zone Europe/Berlin, UTC+1 in winter, UTC+2 from 29 March):

====  ============================  =====================================================
who   subscription                  events (UTC) -> local Berlin day
====  ============================  =====================================================
a     2025-12-01 .. open            Jan 5 10:00 "Login" (u1) + "login" (u2) -> Jan 5 (x2)
                                    Jan 31 23:30 "report" (u1)              -> **Feb 1**
                                    Mar 10 12:00 "login" (u1)               -> Mar 10
b     2026-01-15 .. 2026-03-01      Feb 3 08:00 "login" (u3)               -> Feb 3
                                    Feb 20 08:00 "Page View" (no user)     -> Feb 20
c     2026-02-20 .. open            Mar 2 09:00 "login" (u4)               -> Mar 2
====  ============================  =====================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import date

import pandas as pd
import pytest

from keepwell.errors import InvalidInput
from keepwell.metrics.engagement import (
    active_customers,
    activity_spells_from_events,
    churn_by_tenure,
    customer_usage,
    feature_adoption,
    lifecycle,
    usage_frequency,
)
from keepwell.metrics.sources import Sources
from tests.metrics.conftest import rollup_frame, subs

BERLIN = "Europe/Berlin"
Q1 = {"start": date(2026, 1, 1), "end": date(2026, 4, 1)}


def events(*rows: tuple) -> pd.DataFrame:
    """Event rows: (customer_id, event, occurred_at UTC[, user_id[, value]])."""
    records = []
    for cid, name, at, *rest in rows:
        records.append(
            {
                "customer_id": cid,
                "event": name,
                "occurred_at": pd.Timestamp(at),
                "user_id": rest[0] if rest else None,
                "value": rest[1] if len(rest) > 1 else None,
            }
        )
    return pd.DataFrame.from_records(
        records, columns=["customer_id", "event", "occurred_at", "user_id", "value"]
    )


def customers(**industry: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": list(industry),
            "signup_at": pd.Timestamp("2026-01-01"),
            "industry": list(industry.values()),
            "country": "DE",
            "status": "active",
        }
    )


SUBSCRIPTIONS = (
    ("a", "2025-12-01", None, 1000),
    ("b", "2026-01-15", "2026-03-01", 500),
    ("c", "2026-02-20", None, 700),
)
EVENTS = (
    ("a", "Login", "2026-01-05 10:00", "u1", 1.0),
    ("a", "login", "2026-01-05 10:00", "u2"),
    ("a", "report", "2026-01-31 23:30", "u1", 2.0),
    ("a", "login", "2026-03-10 12:00", "u1"),
    ("b", "login", "2026-02-03 08:00", "u3"),
    ("b", "Page View", "2026-02-20 08:00"),
    ("c", "login", "2026-03-02 09:00", "u4"),
)


def business() -> dict[str, pd.DataFrame]:
    return {
        "customers": customers(a="travel", b="retail", c="travel"),
        "subscriptions": subs(*SUBSCRIPTIONS),
        "events": events(*EVENTS),
    }


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, duckdb_con):
    return duckdb_con if request.param == "duckdb" else request.getfixturevalue("pg_ibis_con")


@pytest.fixture(params=["raw", "rollup"])
def make_src(request, backend, tmp_path) -> Callable[..., Sources]:
    """Sources on DuckDB/PostgreSQL, reading raw events or the rollup built from them."""

    def make(frames: dict[str, pd.DataFrame], *, timezone: str = BERLIN) -> Sources:
        frames = dict(frames)
        if request.param == "rollup":
            ev = frames.get("events", events())
            root = tmp_path / f"store{len(list(tmp_path.iterdir()))}"  # one per call
            frames["rollup"] = rollup_frame(ev, timezone=timezone, root=root)
        src = Sources.from_frames(backend, frames, timezone=timezone, prefix="kw_en_")
        if request.param == "rollup":
            assert src.has_rollup
            src.extra["rollup_timezone"] = timezone
        return src

    return make


def run(src: Sources, builder, **kw) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # driver deprecation chatter
        return src.con.execute(builder(src, **kw))


def by_period(df: pd.DataFrame, *cols: str) -> dict[str, tuple]:
    return {r.period: tuple(getattr(r, c) for c in cols) for r in df.itertuples()}


# -- active customers ----------------------------------------------------------------------


def test_active_customers_dau_wau_mau_stickiness(make_src) -> None:
    # Jan: a on Jan 5 -> 1 active customer-day / 31 days; MAU(Jan 4..31) = {a}; WAU(25..31) = {}
    # Feb: a Feb 1 (the 23:30 UTC event), b Feb 3 and Feb 20 -> 3 / 28; MAU(Feb 1..28) = {a, b}
    # Mar: c Mar 2, a Mar 10 -> 2 / 31; MAU(Mar 4..31) = {a} (c's Mar 2 is outside)
    out = run(make_src(business()), active_customers, **Q1)
    got = by_period(out, "days", "wau", "mau", "period_actives")
    assert got == {"2026-01": (31, 0, 1, 1), "2026-02": (28, 0, 2, 2), "2026-03": (31, 0, 1, 2)}
    dau = dict(zip(out.period, out.dau, strict=True))
    assert dau == pytest.approx({"2026-01": 1 / 31, "2026-02": 3 / 28, "2026-03": 2 / 31})
    sticky = dict(zip(out.period, out.stickiness, strict=True))
    assert sticky == pytest.approx({"2026-01": 1 / 31, "2026-02": 3 / 28 / 2, "2026-03": 2 / 31})


def test_active_customers_trailing_windows_and_30_day_mau(make_src) -> None:
    # Week periods: WAU is the 7 days ending on the week's Sunday.
    out = run(
        make_src(business()),
        active_customers,
        start=date(2026, 2, 16),
        end=date(2026, 3, 9),
        period="week",
        mau_days=30,
    )
    # W08 (Feb 16-22): b on Feb 20 -> WAU 1; MAU 30 days (Jan 24..Feb 22): a Feb 1, b -> 2
    # W09 (Feb 23-Mar 1): nobody -> WAU 0; MAU (Jan 31..Mar 1): a, b -> 2
    # W10 (Mar 2-8): c Mar 2 -> WAU 1; MAU (Feb 7..Mar 8): b (Feb 20), c -> 2
    assert by_period(out, "wau", "mau") == {
        "2026-W08": (1, 2),
        "2026-W09": (0, 2),
        "2026-W10": (1, 2),
    }


def test_active_users_count_distinct_users_per_segment(backend) -> None:
    # Users come from raw events only (the rollup has no user ids): both paths are "raw" here.
    src = Sources.from_frames(backend, business(), timezone=BERLIN, prefix="kw_en_")
    out = run(src, active_customers, **Q1, unit="user", by=["industry"])
    got = {(r.industry, r.period): (r.mau, r.period_actives) for r in out.itertuples()}
    # travel: Jan u1+u2 of a; Feb u1 (a, Feb 1); Mar u4 (c, Mar 2) + u1 (a) with MAU Mar 4..31
    # retail: b's Feb 3 event by u3 (Feb 20 has no user)
    assert got == {
        ("retail", "2026-01"): (0, 0),
        ("retail", "2026-02"): (1, 1),
        ("retail", "2026-03"): (0, 0),
        ("travel", "2026-01"): (2, 2),
        ("travel", "2026-02"): (1, 1),
        ("travel", "2026-03"): (1, 2),
    }
    travel_jan = out[(out.industry == "travel") & (out.period == "2026-01")].iloc[0]
    assert travel_jan.dau == pytest.approx(2 / 31)


def test_zero_customers_gives_zero_rows_per_period(make_src) -> None:
    src = make_src({})
    out = run(src, active_customers, **Q1)
    assert list(out.period) == ["2026-01", "2026-02", "2026-03"]
    assert (out.dau == 0).all() and (out.mau == 0).all() and out.stickiness.isna().all()
    spectrum = run(src, usage_frequency, **Q1)
    assert (spectrum.customers == 0).all() and spectrum.forgotten_zone.isna().all()
    assert run(src, feature_adoption, **Q1).empty
    life = run(src, lifecycle, **Q1)
    assert (life[["new", "returning", "resurrecting", "dormant"]] == 0).all().all()
    tenure = run(src, churn_by_tenure, **Q1)
    assert len(tenure) == 14 and (tenure.churned == 0).all() and tenure.churn_rate.isna().all()


# -- usage frequency -----------------------------------------------------------------------


def test_usage_frequency_spectrum_and_forgotten_zone(make_src) -> None:
    out = run(make_src(business()), usage_frequency, **Q1)
    cols = ("customers", "daily", "weekly", "monthly", "less_than_monthly", "median_active_days")
    # as of Feb 1: a (1 day in Jan 4..31) -> monthly
    # as of Mar 1: a (Feb 1), b (Feb 3, 20) -> both monthly; median (1 + 2) / 2
    # as of Apr 1: a (Mar 10) monthly; b and c (Mar 2, outside Mar 4..31) less than monthly
    assert by_period(out, *cols) == {
        "2026-01": (1, 0, 0, 1, 0, 1.0),
        "2026-02": (2, 0, 0, 2, 0, 1.5),
        "2026-03": (3, 0, 0, 1, 2, 0.0),
    }
    assert list(out.forgotten_zone) == [False, False, True]
    assert out.share_less_than_monthly.iloc[2] == pytest.approx(2 / 3)


def test_usage_frequency_classes_with_thresholds(make_src) -> None:
    # d: active 21 of the 28 days before Apr 1 -> daily; w: 5 days -> weekly (with the
    # defaults 20 / 4 / 1). Duplicates on one day count as events, the day once.
    rows = [("d", "login", f"2026-03-{day:02d} 12:00") for day in range(4, 25)]
    rows += [("w", "login", f"2026-03-{day:02d} 12:00") for day in (5, 6, 7, 8, 9)]
    rows += [("w", "login", "2026-03-09 12:00")]  # duplicate
    src = make_src({"events": events(*rows), "customers": customers(d="x", w="x")})
    usage = run(src, customer_usage, as_of=date(2026, 4, 1)).set_index("customer_id")
    assert usage.loc["d", ["active_days", "events", "frequency"]].tolist() == [21, 21, "daily"]
    assert usage.loc["w", ["active_days", "events", "frequency"]].tolist() == [5, 6, "weekly"]
    spectrum = run(src, usage_frequency, start=date(2026, 3, 1), end=date(2026, 4, 1))
    row = spectrum.iloc[0]
    assert (row.daily, row.weekly, row.median_active_days) == (1, 1, 13.0)
    assert not row.forgotten_zone
    strict = run(src, customer_usage, as_of=date(2026, 4, 1), daily_min=25, weekly_min=6)
    assert sorted(strict.frequency) == ["monthly", "weekly"]


def test_usage_frequency_per_segment(make_src) -> None:
    out = run(make_src(business()), usage_frequency, **Q1, by=["industry"])
    mar = out[out.period == "2026-03"].set_index("industry")
    # travel: a monthly, c less than monthly -> median 0.5; retail: b less than monthly
    assert mar.loc["travel", ["customers", "monthly", "less_than_monthly"]].tolist() == [2, 1, 1]
    assert mar.loc["travel", "median_active_days"] == 0.5
    assert bool(mar.loc["travel", "forgotten_zone"]) is True
    assert mar.loc["retail", ["customers", "less_than_monthly"]].tolist() == [1, 1]


# -- feature adoption ----------------------------------------------------------------------


def test_feature_adoption_per_event_type(make_src) -> None:
    out = run(make_src(business()), feature_adoption, **Q1)
    got = {(r.period, r.event): (r.adopters, r.active_customers) for r in out.itertuples()}
    # "Login" and "login" are one type; "Page View" becomes page_view; the Jan 31 23:30 UTC
    # report is a February (Berlin) event.
    assert got == {
        ("2026-01", "login"): (1, 1),
        ("2026-02", "login"): (1, 2),
        ("2026-02", "page_view"): (1, 2),
        ("2026-02", "report"): (1, 2),
        ("2026-03", "login"): (2, 2),
    }
    assert out.adoption_rate.tolist() == [1.0, 0.5, 0.5, 0.5, 1.0]


def test_feature_adoption_by_segment_and_filter(make_src) -> None:
    src = make_src(business())
    out = run(src, feature_adoption, **Q1, by=["industry"])
    feb = out[out.period == "2026-02"]
    got = {(r.industry, r.event): (r.adopters, r.active_customers) for r in feb.itertuples()}
    assert got == {
        ("retail", "login"): (1, 1),
        ("retail", "page_view"): (1, 1),
        ("travel", "report"): (1, 1),
    }
    only = run(src, feature_adoption, **Q1, filters={"industry": "retail"})
    assert set(only.event) == {"login", "page_view"}


# -- lifecycle -----------------------------------------------------------------------------


def test_lifecycle_counts(make_src) -> None:
    out = run(make_src(business()), lifecycle, **Q1)
    cols = ("new", "returning", "resurrecting", "dormant", "active")
    # Jan: a new. Feb: a returning (Feb 1 Berlin), b new. Mar: a returning, c new, b dormant.
    assert by_period(out, *cols) == {
        "2026-01": (1, 0, 0, 0, 1),
        "2026-02": (1, 1, 0, 0, 2),
        "2026-03": (1, 1, 0, 1, 2),
    }


def test_lifecycle_resurrecting_and_events_before_the_report(make_src) -> None:
    # r: active Nov 2025 (before the report) and Feb -> resurrecting in Feb, dormant in Mar.
    # s: active Dec 2025 and Jan -> returning in Jan; dormant in Feb.
    # t: first event Jan 31 23:30 UTC = Feb 1 in Berlin -> new in Feb, not Jan.
    src = make_src(
        {
            "events": events(
                ("r", "login", "2025-11-10 12:00"),
                ("r", "login", "2026-02-10 12:00"),
                ("s", "login", "2025-12-10 12:00"),
                ("s", "login", "2026-01-10 12:00"),
                ("t", "login", "2026-01-31 23:30"),
            ),
            "customers": customers(r="x", s="x", t="x"),
        }
    )
    out = run(src, lifecycle, **Q1)
    assert by_period(out, "new", "returning", "resurrecting", "dormant") == {
        "2026-01": (0, 1, 0, 0),
        "2026-02": (1, 0, 1, 1),
        "2026-03": (0, 0, 0, 2),
    }


def test_events_before_signup_count_as_activity(make_src) -> None:
    # Customers sign up 2026-01-01; an event on 2025-12-20 (before signup) is still activity:
    # the customer is "new" in December, so January is "returning".
    src = make_src(
        {
            "events": events(
                ("a", "login", "2025-12-20 12:00"), ("a", "login", "2026-01-03 12:00")
            ),
            "customers": customers(a="x"),
        }
    )
    out = run(src, lifecycle, start=date(2025, 12, 1), end=date(2026, 2, 1))
    assert by_period(out, "new", "returning") == {"2025-12": (1, 0), "2026-01": (0, 1)}


# -- churn by tenure -----------------------------------------------------------------------


def test_churn_by_tenure_buckets_and_rates(make_src) -> None:
    out = run(make_src(business()), churn_by_tenure, **Q1)
    # One window 2026-01-01/2026-04-01 (Berlin). b's spell Jan 15 -> Mar 1 ends in it after
    # 1.5 months: tenure 1-3, stage adoption. Reached 0-1: b (from Jan 15), c (Feb 20) and a,
    # whose first month ends 2026-01-01 00:00 UTC -- one hour *after* the window opens at
    # Berlin midnight (Dec 31 23:00 UTC) = 3; 1-3: a, b, c (from Mar 20) = 3; 3-6: a = 1.
    t = out[out.dimension == "tenure"].set_index("bucket")
    assert t.churned.tolist() == [0, 1, 0, 0, 0, 0]
    assert t.reached.tolist() == [3, 3, 1, 0, 0, 0]
    assert t.loc["1-3 months", "churn_rate"] == pytest.approx(1 / 3)
    assert t.loc["1-3 months", "share_of_churned"] == 1.0
    s = out[out.dimension == "stage"].set_index("bucket")
    assert s.churned.tolist() == [0, 1, 0, 0]
    assert s.reached.tolist() == [3, 3, 1, 0]
    assert out.period.unique().tolist() == ["2026-01-01/2026-04-01"]
    # usage in the 28 days before b's churn day (Mar 1 in Berlin): Feb 3 and Feb 20 -> monthly
    u = out[out.dimension == "usage"].set_index("bucket")
    assert u.churned.to_dict() == {"daily": 0, "weekly": 0, "monthly": 1, "none_in_28_days": 0}
    assert (u.reached == 0).all() and u.churn_rate.isna().all()
    assert u.loc["monthly", "share_of_churned"] == 1.0


def test_churn_by_tenure_per_period_and_from_usage(make_src) -> None:
    src = make_src(business())
    monthly = run(src, churn_by_tenure, **Q1, period="month")
    churned = monthly[monthly.churned > 0]
    # b's end (2026-03-01 00:00 UTC = 01:00 Berlin) falls in March
    assert churned[["period", "dimension", "bucket"]].values.tolist() == [
        ["2026-03", "tenure", "1-3 months"],
        ["2026-03", "stage", "adoption"],
        ["2026-03", "usage", "monthly"],
    ]
    usage = run(src, churn_by_tenure, **Q1, period="month", activity="events")
    mar = usage[(usage.period == "2026-03") & (usage.dimension == "tenure")].set_index("bucket")
    # Usage spells (30-day window): a Jan 5 -> Mar 2 23:30 (1.9 months), b Feb 3 -> Mar 22:
    # both churn in March in 1-3; c (Mar 2 -> Apr 1 09:00 UTC) is still active at the end.
    assert mar.loc["1-3 months", "churned"] == 2
    assert mar.loc["0-1 months", "reached"] == 3  # b (until Mar 3), c, a's second spell


# -- usage spells --------------------------------------------------------------------------


def test_activity_spells_from_events_hand_case(backend) -> None:
    # x: events Jan 1, Jan 20 (within 30 days), then Mar 15 (a 54-day silence) -> two spells
    #    Jan 1 -> Feb 19 (Jan 20 + 30 days) and Mar 15 -> Apr 14.
    # y: an order (no events) on Feb 1 -> spell Feb 1 -> Mar 3; a cancelled order counts not.
    # z: an event exactly 30 days after the previous one starts no new spell (contiguous).
    frames = {
        "events": events(
            ("x", "login", "2026-01-01 00:00"),
            ("x", "login", "2026-01-20 00:00"),
            ("x", "login", "2026-03-15 00:00"),
            ("z", "login", "2026-01-01 00:00"),
            ("z", "login", "2026-01-31 00:00"),
        ),
        "orders": pd.DataFrame(
            {
                "customer_id": ["y", "y"],
                "ordered_at": [pd.Timestamp("2026-02-01"), pd.Timestamp("2026-05-01")],
                "amount_minor": [100, 100],
                "currency": ["EUR", "EUR"],
                "category": ["a", "a"],
                "status": ["completed", "cancelled"],
            }
        ),
    }
    src = Sources.from_frames(backend, frames, prefix="kw_en_")
    out = run(src, lambda s: activity_spells_from_events(s, inactivity_days=30))
    got = {
        (r.customer_id, r.spell_no): (str(r.started_at.date()), str(r.ended_at.date()))
        for r in out.itertuples()
    }
    assert got == {
        ("x", 1): ("2026-01-01", "2026-02-19"),
        ("x", 2): ("2026-03-15", "2026-04-14"),
        ("y", 1): ("2026-02-01", "2026-03-03"),
        ("z", 1): ("2026-01-01", "2026-03-02"),
    }
    assert set(out[out.customer_id == "x"].first_started_at.dt.date.astype(str)) == {"2026-01-01"}


def test_invalid_parameters_are_refused(make_src) -> None:
    src = make_src(business())
    with pytest.raises(InvalidInput, match="unit"):
        active_customers(src, **Q1, unit="team")
    with pytest.raises(InvalidInput, match="activity"):
        churn_by_tenure(src, **Q1, activity="logins")
    with pytest.raises(InvalidInput, match="lookback"):
        usage_frequency(src, **Q1, lookback_days=7)


# -- both paths agree ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "kw"),
    [
        (active_customers, {}),
        (active_customers, {"period": "week", "by": ["industry"]}),
        (usage_frequency, {"by": ["industry"]}),
        (feature_adoption, {"period": "day"}),
        (lifecycle, {"period": "week"}),
    ],
)
def test_rollup_and_raw_events_agree(duckdb_con, tmp_path, builder, kw) -> None:
    frames = business()
    raw = Sources.from_frames(duckdb_con, frames, timezone=BERLIN, prefix="kw_raw_")
    frames["rollup"] = rollup_frame(frames["events"], timezone=BERLIN, root=tmp_path)
    rolled = Sources.from_frames(duckdb_con, frames, timezone=BERLIN, prefix="kw_rolled_")
    assert rolled.has_rollup and not raw.has_rollup
    a = run(raw, builder, **Q1, **kw)
    b = run(rolled, builder, **Q1, **kw)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_rollup_in_another_zone_is_not_used(duckdb_con, tmp_path) -> None:
    frames = business()
    frames["rollup"] = rollup_frame(frames["events"], timezone="UTC", root=tmp_path)
    src = Sources.from_frames(duckdb_con, frames, timezone=BERLIN, prefix="kw_en_")
    src.extra["rollup_timezone"] = "UTC"
    out = run(src, feature_adoption, **Q1)
    # read from raw events in Berlin time: the report is a February event
    assert set(out[out.period == "2026-02"].event) == {"login", "page_view", "report"}


def test_public_names() -> None:
    from keepwell.metrics import engagement

    assert set(engagement.__all__) <= set(dir(engagement))
    assert "churn_by_tenure" in engagement.__all__


def test_inactivity_window_must_be_positive(backend) -> None:
    src = Sources.from_frames(backend, business(), prefix="kw_en_")
    with pytest.raises(InvalidInput, match="inactivity_days"):
        activity_spells_from_events(src, inactivity_days=0)
