"""Per-customer features: hand-computed values, point-in-time correctness (no leakage), both
read paths, DuckDB and PostgreSQL. The business is the one of ``test_engagement`` (Berlin)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from keepwell.errors import InvalidInput
from keepwell.metrics.features import as_of_dates, customer_features
from keepwell.metrics.sources import Sources
from tests.metrics import test_engagement as engagement
from tests.metrics.conftest import rollup_frame, subs
from tests.metrics.test_engagement import (
    BERLIN,
    EVENTS,
    SUBSCRIPTIONS,
    business,
    customers,
    events,
    run,
)

backend = engagement.backend  # fixtures: DuckDB/PostgreSQL x raw events/rollup
make_src = engagement.make_src

GRID = {"start": date(2026, 1, 1), "end": date(2026, 4, 1)}


INVOICES = (
    # Feb 10 failed; Mar 31 23:00 UTC is Apr 1 01:00 in Berlin (after the Apr 1 snapshot);
    # Mar 5 was paid
    ("a", "2026-02-10 00:00", "failed"),
    ("a", "2026-03-31 23:00", "failed"),
    ("a", "2026-03-05 00:00", "paid"),
)
SURVEYS = (
    ("a", "nps", 9, "2026-02-10"),
    ("a", "nps", 3, "2026-03-20"),
    ("a", "csat", 5, "2026-03-25"),
)
TICKETS = (("c", "high", "2026-03-25"), ("c", "low", "2026-02-01"))


def with_extras(
    frames: dict[str, pd.DataFrame],
    *,
    invoices: tuple = INVOICES,
    surveys: tuple = SURVEYS,
    tickets: tuple = TICKETS,
) -> dict[str, pd.DataFrame]:
    """Add invoices (customer, issued_at, status), NPS/CSAT answers (customer, kind, score,
    responded_at) and tickets (customer, priority, opened_at); times are UTC."""
    frames = dict(frames)
    frames["invoices"] = pd.DataFrame.from_records(
        [
            {
                "customer_id": c,
                "amount_minor": 1000,
                "currency": "USD",
                "issued_at": pd.Timestamp(at),
                "status": status,
            }
            for c, at, status in invoices
        ]
    )
    frames["surveys"] = pd.DataFrame.from_records(
        [
            {"customer_id": c, "kind": k, "score": v, "responded_at": pd.Timestamp(at)}
            for c, k, v, at in surveys
        ]
    )
    frames["tickets"] = pd.DataFrame.from_records(
        [{"customer_id": c, "priority": p, "opened_at": pd.Timestamp(at)} for c, p, at in tickets]
    )
    return frames


def features(src: Sources, **kw) -> pd.DataFrame:
    out = run(src, customer_features, **kw)
    out["as_of"] = pd.to_datetime(out["as_of"]).dt.date.astype(str)
    return out.set_index(["as_of", "customer_id"])


def test_as_of_grid_is_the_day_after_each_period() -> None:
    assert as_of_dates(**GRID) == [date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)]
    assert as_of_dates(as_of=[date(2026, 3, 1), date(2026, 2, 1), date(2026, 3, 1)]) == [
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    with pytest.raises(InvalidInput, match="as_of"):
        as_of_dates(start=date(2026, 1, 1))
    with pytest.raises(InvalidInput, match="as_of"):
        as_of_dates(as_of=[])


def test_feature_values_hand_computed(make_src) -> None:
    f = features(make_src(with_extras(business())), **GRID)
    # who is active (subscription) at each snapshot: b ended Mar 1 00:00 UTC (before Apr 1),
    # c started Feb 20
    assert sorted(f.index) == [
        ("2026-02-01", "a"),
        ("2026-02-01", "b"),
        ("2026-03-01", "a"),
        ("2026-03-01", "b"),
        ("2026-03-01", "c"),
        ("2026-04-01", "a"),
        ("2026-04-01", "c"),
    ]
    cols = [
        "tenure_days",
        "mrr_minor",
        "events_28",
        "events_prev_28",
        "active_days_28",
        "active_days_prev_28",
        "days_since_last_event",
    ]
    # Feb 1 (= Jan 31 23:00 UTC): a's two Jan 5 events (one day); the Jan 31 23:30 UTC
    # report is already Feb 1 in Berlin, so not before the snapshot. Tenure: Dec 1 -> 62 days.
    assert f.loc[("2026-02-01", "a"), cols].tolist() == [62, 1000, 2, 0, 1, 0, 27]
    assert f.loc[("2026-03-01", "a"), cols].tolist() == [90, 1000, 1, 2, 1, 1, 28]
    assert f.loc[("2026-03-01", "b"), cols].tolist() == [45, 500, 2, 0, 2, 0, 9]
    assert f.loc[("2026-04-01", "a"), cols].tolist() == [121, 1000, 1, 0, 1, 0, 22]
    assert f.loc[("2026-04-01", "c"), cols].tolist() == [40, 700, 0, 1, 0, 1, 30]
    assert pd.isna(f.loc[("2026-02-01", "b"), "days_since_last_event"])  # no event yet
    # ratios and percent changes: null when the previous window is 0 (pct 0 when both are)
    a_mar = f.loc[("2026-03-01", "a")]
    assert (a_mar.events_ratio, a_mar.events_pct_change) == (0.5, -50.0)
    assert (a_mar.active_days_ratio, a_mar.active_days_pct_change) == (1.0, 0.0)
    c_apr = f.loc[("2026-04-01", "c")]
    assert (c_apr.events_ratio, c_apr.events_pct_change) == (0.0, -100.0)
    a_apr = f.loc[("2026-04-01", "a")]
    assert pd.isna(a_apr.events_ratio) and pd.isna(a_apr.events_pct_change)
    b_feb = f.loc[("2026-02-01", "b")]
    assert pd.isna(b_feb.events_ratio) and b_feb.events_pct_change == 0.0
    # counts per event type over the last 28 days ("Login"/"login" are one type)
    assert f.loc[("2026-02-01", "a"), ["n28_login", "n28_report"]].tolist() == [2, 0]
    assert f.loc[("2026-03-01", "b"), ["n28_login", "n28_page_view"]].tolist() == [1, 1]
    # billing, surveys, support
    assert f.loc[("2026-03-01", "a"), "failed_invoices_90"] == 1
    assert f.loc[("2026-04-01", "a"), "failed_invoices_90"] == 1  # Mar 31 23:00 UTC is after
    assert f.loc[("2026-02-01", "a"), "failed_invoices_90"] == 0
    assert f.loc[("2026-03-01", "a"), ["last_nps_score", "days_since_last_nps"]].tolist() == [9, 19]
    assert f.loc[("2026-04-01", "a"), ["last_nps_score", "days_since_last_nps"]].tolist() == [3, 12]
    assert pd.isna(f.loc[("2026-03-01", "b"), "last_nps_score"])
    assert f.loc[("2026-04-01", "c"), "tickets_28"] == 1
    assert f.loc[("2026-03-01", "c"), "tickets_28"] == 1  # Feb 1 00:00 UTC is in Feb 1..28


def test_nothing_after_as_of_leaks_in(make_src) -> None:
    as_of = date(2026, 3, 1)
    before = features(make_src(with_extras(business())), as_of=as_of)
    later = with_extras(
        business(),
        invoices=(*INVOICES, ("b", "2026-02-28 23:00", "failed")),
        surveys=(*SURVEYS, ("b", "nps", 0, "2026-03-02")),
        tickets=(*TICKETS, ("a", "low", "2026-03-01")),
    )
    later["events"] = events(
        *EVENTS,
        ("a", "login", "2026-02-28 23:00"),
        ("a", "export", "2026-03-01 10:00"),
        ("b", "login", "2026-06-01 10:00"),
    )
    later["subscriptions"] = subs(*SUBSCRIPTIONS, ("a", "2026-03-01", None, 5000))
    after = features(make_src(later), as_of=as_of, event_types=["login", "page_view", "report"])
    shared = [c for c in before.columns if c in after.columns]
    pd.testing.assert_frame_equal(before[shared], after[shared], check_dtype=False)


def test_events_before_signup_and_duplicates(make_src) -> None:
    # Signup Jan 1; an event on Dec 28 (before signup) and three identical events on Jan 10.
    frames = {
        "customers": customers(a="x"),
        "subscriptions": subs(("a", "2026-01-01", None, 900)),
        "events": events(
            ("a", "login", "2025-12-28 12:00"),
            ("a", "login", "2026-01-10 12:00"),
            ("a", "login", "2026-01-10 12:00"),
            ("a", "login", "2026-01-10 12:00"),
        ),
    }
    f = features(make_src(frames), as_of=date(2026, 1, 20))
    row = f.loc[("2026-01-20", "a")]
    # window Dec 23 .. Jan 19: both days active, all four events count
    assert (row.events_28, row.active_days_28, row.n28_login) == (4, 2, 4)
    assert (row.tenure_days, row.days_since_last_event) == (19, 10)


def test_days_since_last_event_older_than_both_windows(make_src) -> None:
    # a: events on Dec 20 and Mar 20 only. Mar 1 and Jun 1 have no event in their 56 days
    # (the Mar 20 event is after Mar 1, so it must not count there); b never had an event.
    frames = {
        "customers": customers(a="x", b="y"),
        "subscriptions": subs(("a", "2025-12-01", None, 900), ("b", "2026-01-15", None, 500)),
        "events": events(("a", "login", "2025-12-20 12:00"), ("a", "login", "2026-03-20 12:00")),
    }
    f = features(make_src(frames), as_of=[date(2026, 3, 1), date(2026, 4, 1), date(2026, 6, 1)])
    a = f.xs("a", level="customer_id")
    # Dec 20 -> Mar 1: 71 days; Mar 20 -> Apr 1: 12; Mar 20 -> Jun 1: 73
    assert a.days_since_last_event.tolist() == [71, 12, 73]
    assert a.events_28.tolist() == [0, 1, 0]
    assert a.events_prev_28.tolist() == [0, 0, 0]
    assert f.xs("b", level="customer_id").days_since_last_event.isna().all()


def test_month_boundary_in_berlin(make_src) -> None:
    # 2026-02-28 23:30 UTC is Mar 1 00:30 in Berlin: after the Mar 1 snapshot, inside Apr 1's
    frames = {
        "customers": customers(a="x"),
        "subscriptions": subs(("a", "2026-01-01", None, 900)),
        "events": events(("a", "login", "2026-02-28 23:30"), ("a", "login", "2026-02-28 22:30")),
    }
    f = features(make_src(frames), as_of=[date(2026, 3, 1), date(2026, 3, 2)])
    assert f.loc[("2026-03-01", "a"), ["events_28", "days_since_last_event"]].tolist() == [1, 1]
    assert f.loc[("2026-03-02", "a"), ["events_28", "active_days_28"]].tolist() == [2, 2]
    assert f.loc[("2026-03-02", "a"), "days_since_last_event"] == 1


def test_segments_and_usage_activity(make_src) -> None:
    src = make_src(with_extras(business()))
    f = features(src, **GRID, by=["industry"], filters={"industry": "travel"})
    assert set(f.industry) == {"travel"}
    assert sorted({cid for _, cid in f.index}) == ["a", "c"]
    usage = features(src, as_of=date(2026, 3, 1), activity="events")
    # usage activity (30-day window) at Mar 1: a (last event Feb 1), b (Feb 20); c has no
    # event before Mar 2. No subscription MRR is needed, but it is still reported.
    assert sorted(cid for _, cid in usage.index) == ["a", "b"]
    assert usage.loc[("2026-03-01", "a"), "tenure_days"] == 55  # spell from Jan 5


def test_zero_customers(make_src) -> None:
    out = run(make_src({}), customer_features, **GRID)
    assert out.empty
    assert {"customer_id", "as_of", "events_28", "days_since_last_event"} <= set(out.columns)


def test_rollup_and_raw_events_agree(duckdb_con, tmp_path) -> None:
    frames = with_extras(business())
    raw = Sources.from_frames(duckdb_con, frames, timezone=BERLIN, prefix="kw_fraw_")
    frames["rollup"] = rollup_frame(frames["events"], timezone=BERLIN, root=tmp_path)
    rolled = Sources.from_frames(duckdb_con, frames, timezone=BERLIN, prefix="kw_froll_")
    a = run(raw, customer_features, **GRID)
    b = run(rolled, customer_features, **GRID)
    assert len(a) == 7
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_unknown_activity_is_refused(make_src) -> None:
    with pytest.raises(InvalidInput, match="activity"):
        customer_features(make_src(business()), **GRID, activity="logins")


def test_public_names() -> None:
    from keepwell.metrics import features as module

    assert set(module.__all__) == {"as_of_dates", "customer_features"}
    assert all(hasattr(module, name) for name in module.__all__)
