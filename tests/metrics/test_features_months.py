"""Per-customer features on month-start snapshots read from the rollup's month summaries
(:mod:`keepwell.metrics.rollup_months`: the last 28 days before a month's first day are the
previous month's last 28, the 56 its ``d_56`` / ``e_56``) give what the daily rows and the raw
events give: by hand on the hand business of ``test_rollup_months`` (plus d), and compared on
its seeded business, with breakdowns, filters, explicit event types, customers idle for
months and customers active only in the tail of the month before (tail rows,
active_days = 0). Snapshots off a month's first day, or other windows, read the daily rows.

Windows of the hand snapshots (Berlin local days; "cur" = the last 28, "prev" = the 28 before):

=======  ==============  ================
as_of    cur             prev
=======  ==============  ================
Feb 1    Jan 4..Jan 31   Dec 7..Jan 3
Mar 1    Feb 1..Feb 28   Jan 4..Jan 31
Apr 1    Mar 4..Mar 31   Feb 4..Mar 3
May 1    Apr 3..Apr 30   Mar 6..Apr 2
Jun 1    May 4..May 31   Apr 6..May 3
=======  ==============  ================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import ibis
import pandas as pd
import pytest

from keepwell.events.store import EventStore
from keepwell.metrics import features
from keepwell.metrics.features import customer_features
from keepwell.metrics.rollup import Rollup
from keepwell.metrics.sources import Sources
from tests.metrics.conftest import subs
from tests.metrics.test_rollup_months import (
    BERLIN,
    HAND,
    batch,
    business,  # noqa: F401 -- the seeded business, a module fixture
    event_frame,
    random_business,
    sources,
)

# d: Mar 2 and Mar 25 (12:00 UTC, the same local days)
HAND_D = (*HAND, ("d", "login", "2026-03-02 12:00"), ("d", "login", "2026-03-25 12:00"))
SNAPSHOTS = [date(2026, m, 1) for m in (2, 3, 4, 5, 6)]
COLUMNS = [
    "events_28",
    "events_prev_28",
    "active_days_28",
    "active_days_prev_28",
    "days_since_last_event",
    "n28_export",
    "n28_login",
    "n28_page_view",
    "n28_report",
]
N = None  # no event before the snapshot

# (customer, as_of) -> COLUMNS, by hand. Local days (see test_rollup_months): a Jan 2 (2
# logins), 4 report, 20 export, 25 login, 31 page view, Feb 1 login, Mar 1 export; b Feb 10
# (2 logins), 22 export, 27 report, Mar 24 login, 29 login, 31 report; c Jan 15 (3 reports),
# Mar 3 login; d Mar 2 login, Mar 25 login. Everyone subscribed since 2025-12-01.
HAND_FEATURES = {
    # Feb 1: a, cur Jan 4, 20, 25, 31 (one of each type); prev Jan 2 (2 events); last Jan 31
    ("a", date(2026, 2, 1)): (4, 2, 4, 1, 1, 1, 1, 1, 1),
    ("b", date(2026, 2, 1)): (0, 0, 0, 0, N, 0, 0, 0, 0),
    ("c", date(2026, 2, 1)): (3, 0, 1, 0, 17, 0, 0, 0, 3),  # Jan 15: 3 reports
    ("d", date(2026, 2, 1)): (0, 0, 0, 0, N, 0, 0, 0, 0),
    # Mar 1 (February: 28 days): a, cur Feb 1; prev Jan 4, 20, 25, 31; last Feb 1 = 28 days
    ("a", date(2026, 3, 1)): (1, 4, 1, 4, 28, 0, 1, 0, 0),
    ("b", date(2026, 3, 1)): (4, 0, 3, 0, 2, 1, 2, 0, 1),
    # c: only in the tail of the month before (February's tail row: Jan 15, 3 events); its
    # last day comes from January's row: Mar 1 - Jan 15 = 16 + 28 + 1 = 45
    ("c", date(2026, 3, 1)): (0, 3, 0, 1, 45, 0, 0, 0, 0),
    ("d", date(2026, 3, 1)): (0, 0, 0, 0, N, 0, 0, 0, 0),
    # Apr 1: a, Mar 1 in prev (Feb 4..Mar 3), 31 days ago
    ("a", date(2026, 4, 1)): (0, 1, 0, 1, 31, 0, 0, 0, 0),
    # b: cur Mar 24, 29, 31 (2 logins, 1 report); prev Feb 10, 22, 27 (4 events)
    ("b", date(2026, 4, 1)): (3, 4, 3, 3, 1, 0, 2, 0, 1),
    ("c", date(2026, 4, 1)): (0, 1, 0, 1, 29, 0, 0, 0, 0),  # Mar 3 in prev
    ("d", date(2026, 4, 1)): (1, 1, 1, 1, 7, 0, 1, 0, 0),  # Mar 25 cur, Mar 2 prev
    # May 1: idle a and c, days since from March's rows: May 1 - Mar 1 = 61, - Mar 3 = 59
    ("a", date(2026, 5, 1)): (0, 0, 0, 0, 61, 0, 0, 0, 0),
    # b: only in the tail of April (Mar 24, 29, 31 in prev, Mar 6..Apr 2); last Mar 31
    ("b", date(2026, 5, 1)): (0, 3, 0, 3, 31, 0, 0, 0, 0),
    ("c", date(2026, 5, 1)): (0, 0, 0, 0, 59, 0, 0, 0, 0),
    ("d", date(2026, 5, 1)): (0, 1, 0, 1, 37, 0, 0, 0, 0),  # Mar 25 in prev
    # Jun 1: no May summaries at all; a Mar 1, b Mar 31, c Mar 3, d Mar 25
    ("a", date(2026, 6, 1)): (0, 0, 0, 0, 92, 0, 0, 0, 0),
    ("b", date(2026, 6, 1)): (0, 0, 0, 0, 62, 0, 0, 0, 0),
    ("c", date(2026, 6, 1)): (0, 0, 0, 0, 90, 0, 0, 0, 0),
    ("d", date(2026, 6, 1)): (0, 0, 0, 0, 68, 0, 0, 0, 0),
}


@pytest.fixture
def months_read(monkeypatch) -> list[int]:
    """One entry per :func:`customer_features` call that read the month summaries."""
    calls: list[int] = []
    original = features._windows_from_months

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(features, "_windows_from_months", spy)
    return calls


def run(src: Sources, **kw) -> pd.DataFrame:
    out = src.con.execute(customer_features(src, **kw))
    out["as_of"] = pd.to_datetime(out["as_of"]).dt.date
    return out.reset_index(drop=True)


def by_hand(df: pd.DataFrame) -> dict[tuple[str, date], tuple]:
    return {
        (r.customer_id, r.as_of): tuple(
            None if pd.isna(getattr(r, c)) else int(getattr(r, c)) for c in COLUMNS
        )
        for r in df.itertuples(index=False)
    }


@pytest.fixture(scope="module")
def hand(tmp_path_factory) -> Iterator[Callable[[str], Sources]]:
    """Sources of the hand business: ``"months"`` (rollup with summaries), ``"daily"`` (the
    same rollup without them), ``"raw"`` (events only)."""
    root = tmp_path_factory.mktemp("hand")
    store = EventStore(root / "events")
    store.append(batch(*HAND_D))
    rollup = Rollup(root / "rollup", timezone=BERLIN)
    rollup.refresh(store)
    frames = {
        "events": event_frame(HAND_D),
        "subscriptions": subs(*[(c, "2025-12-01", None, 1000) for c in "abcd"]),
    }
    cons = []

    def make(name: str) -> Sources:
        con = ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        cons.append(con)
        return sources(con, frames, None if name == "raw" else rollup, months=name != "daily")

    yield make
    for con in cons:
        con.disconnect()


@pytest.mark.parametrize("name", ["months", "daily", "raw"])
def test_hand_features_on_month_starts(hand, months_read, name) -> None:
    src = hand(name)
    assert ("rollup_months" in src.tables) == (name == "months")
    got = run(src, as_of=SNAPSHOTS)
    assert len(months_read) == (name == "months")
    assert by_hand(got) == HAND_FEATURES
    # one snapshot alone: the same rows
    one = run(src, as_of=date(2026, 3, 1))
    assert by_hand(one) == {k: v for k, v in HAND_FEATURES.items() if k[1] == date(2026, 3, 1)}


@pytest.mark.parametrize("name", ["months", "daily", "raw"])
def test_days_since_last_event_with_a_short_window_mid_month(hand, months_read, name) -> None:
    # as_of Mar 20, window_days=7: cur Mar 13..19, prev Mar 6..12. d (Mar 2, Mar 25) has no
    # event in either: its last event before the snapshot is Mar 2, 18 days before. With the
    # summaries attached (fails: null), the last day of customers idle through both windows
    # comes from whole months, and March's last active day (Mar 25) is after the snapshot:
    # that holds only when 2 x window_days covers the snapshot's month so far (28: always)
    src = hand(name)
    got = run(src, as_of=date(2026, 3, 20), window_days=7)
    assert not months_read  # not a month's first day: the windows come from the daily rows
    d = got[got.customer_id == "d"].iloc[0]
    assert (d.events_7, d.events_prev_7) == (0, 0)
    assert d.days_since_last_event == 18
    pd.testing.assert_frame_equal(got, run(hand("raw"), as_of=date(2026, 3, 20), window_days=7))


# -- the seeded business ----------------------------------------------------------------------

MONTH_STARTS = [
    date(2024, 7, 1),  # June 2024: the early history of every eighth customer
    date(2024, 8, 1),  # July 2024: their tail rows only (exports Jun 10..18, from Jun 6 on)
    date(2024, 9, 1),  # August 2024: no summary rows; idle since June
    date(2025, 1, 1),  # December 2024: nothing; idle since June 2024 or never active
    date(2025, 3, 1),  # February 2025: 28 days
    date(2025, 11, 1),
    date(2026, 3, 1),
    date(2026, 4, 1),  # March 2026: DST
    date(2026, 5, 1),  # April 2026: "invite" begins
    date(2026, 8, 1),  # July 2026: the last month of events
    date(2026, 9, 1),  # August 2026: Aug 1 (23:30 UTC on Jul 31) and July's tail
    date(2026, 10, 1),  # September 2026: no summaries (Oct 1 - 56 = Aug 6, after Aug 1)
]


def seeded_subscriptions(customer_ids: list[str]) -> pd.DataFrame:
    """Every customer subscribed since 2024-01-01; every fifth one stops on 2026-02-15 and
    comes back on 2026-05-10 (no rows at Mar 1, Apr 1, May 1); zz (no customers row) from
    2025-06-01."""
    rows = []
    for i, cid in enumerate(customer_ids):
        if i % 5 == 4:
            rows += [(cid, "2024-01-01", "2026-02-15", 1000 + i), (cid, "2026-05-10", None, 900)]
        else:
            rows.append((cid, "2024-01-01", None, 1000 + i))
    rows.append(("zz", "2025-06-01", None, 500))
    return subs(*rows)


@pytest.fixture(scope="module")
def seeded(business) -> Iterator[dict[str, Sources]]:  # noqa: F811
    """The seeded business's Sources with subscriptions: summaries of the incrementally kept
    rollup (partial rows) and of the rebuilt one, the kept rollup's daily rows, raw events."""
    _, customers = random_business()
    frames = {
        "events": event_frame(business["rows"]),
        "customers": customers,
        "subscriptions": seeded_subscriptions(list(customers.customer_id)),
    }
    cons = []

    def src(rollup: Rollup | None, *, months: bool = True) -> Sources:
        con = ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        cons.append(con)
        return sources(con, frames, rollup, months=months)

    yield {
        "months_partial": src(business["kept"]),
        "months_compacted": src(business["rebuilt"]),
        "daily": src(business["kept"], months=False),
        "raw": src(None),
    }
    for con in cons:
        con.disconnect()


def test_seeded_business_has_what_the_comparison_needs(seeded) -> None:
    src = seeded["months_partial"]
    got = run(src, as_of=MONTH_STARTS)
    assert len(got) > 300
    months = src.con.execute(src.rollup_months)
    # snapshots on the first day after a month with a customer's tail row (active only in
    # the month before it, within the 56 days)
    tail = months[months.active_days == 0]
    after = pd.to_datetime(tail.month) + pd.offsets.MonthBegin(1)
    tails = set(zip(tail.customer_id, after.dt.date, strict=True))
    rows = got.set_index(["customer_id", "as_of"]).sort_index()
    tail_rows = rows.loc[sorted(tails & set(rows.index))]
    assert len(tail_rows) >= 5
    assert (tail_rows.active_days_28 == 0).all() and (tail_rows.active_days_prev_28 > 0).all()
    assert (tail_rows.days_since_last_event > 28).all()
    # idle for months, and never active (yet)
    assert (got.days_since_last_event > 90).sum() >= 10
    assert got.days_since_last_event.isna().sum() >= 10
    # and a customer both tail-only at Aug 1, 2024 and idle since June at Sep 1
    c00 = rows.loc["c00"]
    assert c00.loc[date(2024, 8, 1), "active_days_prev_28"] == 1
    assert (
        c00.loc[date(2024, 9, 1), "days_since_last_event"]
        == (date(2024, 9, 1) - date(2024, 6, 10)).days
    )


SEEDED_CASES = [
    pytest.param({"as_of": MONTH_STARTS}, True, id="month-starts"),
    pytest.param({"as_of": date(2026, 4, 1)}, True, id="one-month-start"),
    pytest.param({"start": date(2025, 10, 1), "end": date(2026, 7, 1)}, True, id="start-end"),
    pytest.param({"as_of": MONTH_STARTS, "by": ["industry"]}, True, id="by-industry"),
    pytest.param(
        {"as_of": MONTH_STARTS, "filters": {"industry": ["retail", "software"]}},
        True,
        id="filter",
    ),
    pytest.param(
        {"as_of": MONTH_STARTS, "event_types": ["login", "invite", "report_created", "nope"]},
        True,
        id="event-types",
    ),
    pytest.param(
        {
            "as_of": MONTH_STARTS[4:],
            "by": ["industry"],
            "filters": {"industry": "travel"},
            "event_types": ["page_view", "invite"],
        },
        True,
        id="by-filter-types",
    ),
    pytest.param({"as_of": [date(2026, 3, 15), date(2026, 4, 1)]}, False, id="mid-month"),
    pytest.param({"as_of": date(2025, 12, 24)}, False, id="one-mid-month"),
    pytest.param({"as_of": MONTH_STARTS[4:], "window_days": 14}, False, id="window-14"),
]


@pytest.mark.parametrize(("kw", "from_months"), SEEDED_CASES)
def test_features_agree_with_summaries_daily_rows_and_raw_events(
    seeded, months_read, kw, from_months
) -> None:
    want = run(seeded["raw"], **kw)
    assert len(want) > 0
    if "event_types" in kw:
        assert want[f"n28_{kw['event_types'][0]}"].sum() > 0
    if "nope" in kw.get("event_types", ()):
        assert (want.n28_nope == 0).all()  # a type not in the data
    for name in ("months_partial", "months_compacted", "daily"):
        before = len(months_read)
        got = run(seeded[name], **kw)
        assert len(months_read) - before == (from_months and name != "daily"), name
        pd.testing.assert_frame_equal(got, want, obj=name)
