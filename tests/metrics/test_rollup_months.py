"""Rollup month summaries (:mod:`keepwell.metrics.rollup_months`): their rows by hand, their
incremental upkeep (only months whose daily files changed are rebuilt), staleness (a manifest
that does not match the rollup is never read), and that metrics give the same results with
them, from the daily rows and from raw events. Real event store and rollup, DuckDB Sources.

The hand business (Europe/Berlin: UTC+1, UTC+2 from 2026-03-29 01:00 UTC), three local months:

====  ===================================  ==========================================
who   event (UTC)                          local Berlin day
====  ===================================  ==========================================
a     2026-01-02 09:00 login (twice)       Jan 2 (a duplicate: two logins, one day)
      2026-01-03 23:30 report              **Jan 4** 00:30: January's last 28 begin
      2026-01-20 12:00 export              Jan 20
      2026-01-25 10:00 login               Jan 25: January's last 7 begin
      2026-01-31 22:30 Page View           Jan 31 23:30: still January
      2026-01-31 23:30 login               **Feb 1** 00:30
      2026-02-28 23:30 export              **Mar 1** 00:30
b     2026-02-10 10:00 login, 15:00 Login  Feb 10 (one type after normalising)
      2026-02-21 23:00 export              **Feb 22** 00:00: February's last 7 begin
      2026-02-27 12:00 report              Feb 27
      2026-03-24 12:00 login               Mar 24: the day before March's last 7
      2026-03-29 00:30 login               Mar 29 01:30 CET (DST begins at 01:00 UTC)
      2026-03-30 22:30 report              **Mar 31** 00:30 CEST
c     2026-01-15 12:00 report (3 times)    Jan 15
      2026-03-03 12:00 login               Mar 3: the day before March's last 28
====  ===================================  ==========================================

Windows are a month's last n days, d >= (first day of the next month) - n:
January: last 7 = Jan 25..31, last 28 = Jan 4..31. February: last 7 = Feb 22..28, last 28 =
all of February. March: last 7 = Mar 25..31, last 28 = Mar 4..31. April: last 7 = Apr 24..30,
last 28 = Apr 3..30.

The 56 days ending with a month (``d_56``, ``e_56``: the two 28-day windows of a snapshot on
the next month's first day) reach into the month before: January = Dec 7..Jan 31, February
(28 days) = Jan 4..Feb 28, March = Feb 4..Mar 31, April = Mar 6..Apr 30, May = Apr 6..May 31.
So a daily file reaches the month of its first day and every later month whose 56 days begin
on or before its last day: a day in March from Mar 6 on also changes April, a day in January
from Jan 4 on also changes February. A customer active only in those days of the month before
has a row for the month with active_days = 0 (a "tail" row: last_day null, no own counts).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date
from pathlib import Path
from types import SimpleNamespace

import duckdb
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keepwell.events.store import EventStore
from keepwell.metrics import rollup_months
from keepwell.metrics.engagement import (
    active_customers,
    feature_adoption,
    lifecycle,
    usage_frequency,
)
from keepwell.metrics.event_retention import event_retention
from keepwell.metrics.period_activity import period_activity
from keepwell.metrics.rollup import Rollup
from keepwell.metrics.rollup_months import MonthSummaries, fingerprints
from keepwell.metrics.sources import Sources

BERLIN = "Europe/Berlin"
JAN, FEB, MAR, APR = (date(2026, m, 1) for m in (1, 2, 3, 4))
Q1 = {"start": JAN, "end": APR}
TYPES = ("n_export", "n_login", "n_page_view", "n_report")

HAND = (
    ("a", "login", "2026-01-02 09:00"),
    ("a", "login", "2026-01-02 09:00"),
    ("a", "report", "2026-01-03 23:30"),
    ("a", "export", "2026-01-20 12:00"),
    ("a", "login", "2026-01-25 10:00"),
    ("a", "Page View", "2026-01-31 22:30"),
    ("a", "login", "2026-01-31 23:30"),
    ("a", "export", "2026-02-28 23:30"),
    ("b", "login", "2026-02-10 10:00"),
    ("b", "Login", "2026-02-10 15:00"),
    ("b", "export", "2026-02-21 23:00"),
    ("b", "report", "2026-02-27 12:00"),
    ("b", "login", "2026-03-24 12:00"),
    ("b", "login", "2026-03-29 00:30"),
    ("b", "report", "2026-03-30 22:30"),
    ("c", "report", "2026-01-15 12:00"),
    ("c", "report", "2026-01-15 12:00"),
    ("c", "report", "2026-01-15 12:00"),
    ("c", "login", "2026-03-03 12:00"),
)

# (customer, month) -> (active_days, last_day, d_7, d_28, n_export, n_login, n_page_view,
# n_report); "no events of a type" may be stored as 0 or null: read as 0.
EXPECTED = {
    # a, January: days Jan 2, 4, 20, 25, 31 = 5; last 7 (Jan 25..31): 25, 31 = 2; last 28
    # (Jan 4..31): 4, 20, 25, 31 = 4 (Jan 2 is before); export Jan 20 = 1; login 2 (Jan 2,
    # duplicate) + 1 (Jan 25) = 3; page view Jan 31 = 1; report Jan 4 = 1
    ("a", JAN): (5, date(2026, 1, 31), 2, 4, 1, 3, 1, 1),
    # a, February: Feb 1 only (23:30 UTC on Jan 31); not in Feb 22..28; in all of February
    ("a", FEB): (1, date(2026, 2, 1), 0, 1, 0, 1, 0, 0),
    # a, March: Mar 1 only (23:30 UTC on Feb 28); before Mar 4 and Mar 25: in no window
    ("a", MAR): (1, date(2026, 3, 1), 0, 0, 1, 0, 0, 0),
    # b, February: days Feb 10, 22, 27 = 3; last 7 (Feb 22..28): 22, 27 = 2; last 28: all 3;
    # export 1, login 2 (login + Login on Feb 10), report 1
    ("b", FEB): (3, date(2026, 2, 27), 2, 3, 1, 2, 0, 1),
    # b, March: days Mar 24, 29, 31 = 3; last 7 (Mar 25..31): 29, 31 = 2; last 28 (Mar
    # 4..31): all 3; login 2, report 1
    ("b", MAR): (3, date(2026, 3, 31), 2, 3, 0, 2, 0, 1),
    # c, January: Jan 15 (three reports, one day): in the last 28, not the last 7
    ("c", JAN): (1, date(2026, 1, 15), 0, 1, 0, 0, 0, 3),
    # c, March: Mar 3, the day before the last 28 begin
    ("c", MAR): (1, date(2026, 3, 3), 0, 0, 0, 1, 0, 0),
}

WTYPES = ("n28_export", "n28_login", "n28_page_view", "n28_report")

# (customer, month) -> (active_days, e_28, d_56, e_56, n28_export, n28_login, n28_page_view,
# n28_report), every row (tail rows too); e_28 / n28_* "none" may be null: read as 0.
WINDOWS = {
    # a, January: last 28 (Jan 4..31): Jan 4 report, 20 export, 25 login, 31 page view = 4
    # events, one of each type; 56 (Dec 7..Jan 31): all 5 days, 2 + 1 + 1 + 1 + 1 = 6 events
    ("a", JAN): (5, 4, 5, 6, 1, 1, 1, 1),
    # a, February (28 days: its last 28 are all of it): Feb 1 (23:30 UTC on Jan 31) login = 1;
    # 56 = Jan 4..Feb 28: Jan 4 (23:30 UTC on Jan 3: the first day in), 20, 25, 31 + Feb 1 =
    # 5 days, 5 events (Jan 2, with its two logins, is out)
    ("a", FEB): (1, 1, 5, 5, 0, 1, 0, 0),
    # a, March: Mar 1 (23:30 UTC on Feb 28) is before Mar 4: no event in the last 28; 56 =
    # Feb 4..Mar 31 holds Mar 1 only (Feb 1 is before Feb 4)
    ("a", MAR): (1, 0, 1, 1, 0, 0, 0, 0),
    # b, February: last 28 = all: Feb 10 (2 logins), 22 export, 27 report = 4 events; 56 =
    # Jan 4..Feb 28: nothing in January, so 3 days, 4 events
    ("b", FEB): (3, 4, 3, 4, 1, 2, 0, 1),
    # b, March: last 28 (Mar 4..31): Mar 24, 29 logins, Mar 31 (22:30 UTC on Mar 30, CEST)
    # report = 3; 56 = Feb 4..Mar 31: + Feb 10, 22, 27 (4 events) = 6 days, 7 events
    ("b", MAR): (3, 3, 6, 7, 0, 2, 0, 1),
    # b, April (tail row): no April day; 56 = Mar 6..Apr 30 holds Mar 24, 29, 31 = 3 days, 3
    # events
    ("b", APR): (0, 0, 3, 3, 0, 0, 0, 0),
    # c, January: Jan 15 (3 reports) in the last 28 (Jan 4..31) and the 56
    ("c", JAN): (1, 3, 1, 3, 0, 0, 0, 3),
    # c, February (tail row): no February day; 56 = Jan 4..Feb 28 holds Jan 15: 1 day, 3 events
    ("c", FEB): (0, 0, 1, 3, 0, 0, 0, 0),
    # c, March: Mar 3 is before the last 28 (Mar 4..31); 56 = Feb 4..Mar 31: Mar 3 only.
    # No April rows for a (Mar 1) or c (Mar 3): April's 56 days begin Mar 6
    ("c", MAR): (1, 0, 1, 1, 0, 0, 0, 0),
}
TAIL = {("b", APR), ("c", FEB)}


# -- helpers ---------------------------------------------------------------------------------


def batch(*rows: tuple) -> pa.Table:
    """Events: (customer_id, event, 'YYYY-MM-DD HH:MM' UTC or a naive UTC pd.Timestamp)."""
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "event": pa.array([r[1] for r in rows], pa.string()),
            "occurred_at": pa.array(
                [pd.Timestamp(r[2]).to_pydatetime().replace(tzinfo=UTC) for r in rows],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def event_frame(rows: list[tuple] | tuple) -> pd.DataFrame:
    """The same events as an ``events`` frame for :meth:`Sources.from_frames` (naive UTC)."""
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "event": [r[1] for r in rows],
            "occurred_at": pd.to_datetime([pd.Timestamp(r[2]) for r in rows]).astype(
                "datetime64[us]"
            ),
            "user_id": pd.Series([None] * len(rows), dtype="object"),
            "value": pd.Series([None] * len(rows), dtype="float64"),
        }
    )


def summary_rows(rollup: Rollup) -> dict[tuple[str, date], tuple]:
    """The month summaries of the rollup's current snapshot with activity in their month."""
    return as_rows(summary_frame(rollup))


def as_rows(df: pd.DataFrame) -> dict[tuple[str, date], tuple]:
    """Summary rows as in :data:`EXPECTED` (a type without events: 0). Tail rows (active_days
    0: activity only in the month before, within the 56 days) are not activity of the month
    and are left out (:func:`window_rows` has them)."""
    df = df[df.active_days > 0].copy()
    for t in TYPES:
        df[t] = df[t].fillna(0) if t in df.columns else 0
    out = {}
    for r in df.itertuples(index=False):
        key = (r.customer_id, pd.Timestamp(r.month).date())
        assert key not in out, f"two rows for {key}"
        out[key] = (
            int(r.active_days),
            pd.Timestamp(r.last_day).date(),
            int(r.d_7),
            int(r.d_28),
            *(int(getattr(r, t)) for t in TYPES),
        )
    return out


def summary_frame(rollup: Rollup) -> pd.DataFrame:
    """Every row of the month summaries of the rollup's current snapshot (tail rows too)."""
    files = rollup.months.current(rollup.files())
    assert files, "the month summaries do not match the rollup"
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM read_parquet({files!r}, union_by_name = true)").df()


def window_rows(rollup: Rollup) -> dict[tuple[str, date], tuple]:
    """Every summary row as in :data:`WINDOWS`. Checks what every row must hold: d_56 and
    e_56 are never null, the own-month columns of a tail row (active_days 0) are empty."""
    df = summary_frame(rollup)
    assert df.d_56.notna().all() and df.e_56.notna().all()
    tail = df[df.active_days == 0]
    assert tail.last_day.isna().all()
    for col in ("d_7", "d_28", "e_28", *TYPES, *WTYPES):
        if col in tail.columns:
            assert (tail[col].fillna(0) == 0).all(), col
    for col in ("e_28", *WTYPES):
        df[col] = df[col].fillna(0) if col in df.columns else 0
    out = {}
    for r in df.itertuples(index=False):
        key = (r.customer_id, pd.Timestamp(r.month).date())
        assert key not in out, f"two rows for {key}"
        out[key] = (
            int(r.active_days),
            int(r.e_28),
            int(r.d_56),
            int(r.e_56),
            *(int(getattr(r, t)) for t in WTYPES),
        )
    return out


def retired(rollup: Rollup) -> dict[str, float]:
    return json.loads(rollup.months.manifest_path.read_text())["retired"]


def manifest(rollup: Rollup) -> dict[date, dict]:
    months = json.loads(rollup.months.manifest_path.read_text())["months"]
    return {date.fromisoformat(m): e for m, e in months.items()}


def edit_manifest(rollup: Rollup, change: Callable[[dict], None]) -> None:
    data = json.loads(rollup.months.manifest_path.read_text())
    change(data["months"])
    rollup.months.manifest_path.write_text(json.dumps(data))


def built(tmp_path: Path, *batches: tuple, name: str = "r") -> tuple[EventStore, Rollup]:
    """An event store with one append per batch and a rollup refreshed after each."""
    store = EventStore(tmp_path / f"{name}-events")
    rollup = Rollup(tmp_path / f"{name}-rollup", timezone=BERLIN)
    for rows in batches:
        store.append(batch(*rows))
        rollup.refresh(store)
    return store, rollup


@pytest.fixture
def months_rebuilt(monkeypatch) -> list[list[date]]:
    """What every :meth:`Rollup.update_months` call (also inside refresh / compact) returned."""
    calls: list[list[date]] = []
    original = Rollup.update_months

    def spy(self: Rollup) -> list[date]:
        out = original(self)
        calls.append(list(out))
        return out

    monkeypatch.setattr(Rollup, "update_months", spy)
    return calls


@pytest.fixture
def connect() -> Iterator[Callable[[], object]]:
    """New in-memory DuckDB connections (one per Sources: ``attach`` names fixed views)."""
    cons = []

    def make():
        con = ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        cons.append(con)
        return con

    yield make
    for con in cons:
        con.disconnect()


def sources(
    con, frames: dict[str, pd.DataFrame], rollup: Rollup | None = None, *, months: bool = True
) -> Sources:
    """Sources of ``frames``; with ``rollup`` attached (``months=False``: its month summaries
    dropped, so metrics read the daily rows)."""
    src = Sources.from_frames(con, frames, timezone=BERLIN)
    if rollup is not None:
        rollup.attach(src)
        if not months:
            src.tables.pop("rollup_months")
    return src


def tidy(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    return df.sort_values(by or list(df.columns)).reset_index(drop=True)


CASES = [
    pytest.param(active_customers, {}, id="active"),
    pytest.param(usage_frequency, {}, id="usage"),
    pytest.param(usage_frequency, {"by": ["industry"]}, id="usage-by-industry"),
    pytest.param(feature_adoption, {}, id="adoption"),
    pytest.param(lifecycle, {}, id="lifecycle"),
    pytest.param(event_retention, {}, id="retention"),
    pytest.param(
        event_retention, {"start_event": "login", "return_event": "export"}, id="retention-events"
    ),
]


SOME = [CASES[0], CASES[4], CASES[6]]
"""Metrics the upkeep tests compare (the full list runs on the random business)."""


def figures(src: Sources, *, start: date, end: date, cases: list = SOME) -> list[pd.DataFrame]:
    """The metrics of ``cases``, by month and by quarter."""
    out = []
    for period in ("month", "quarter"):
        for case in cases:
            builder, kw = case.values
            out.append(
                tidy(src.con.execute(builder(src, start=start, end=end, period=period, **kw)))
            )
    return out


def activity(src: Sources, *, start: date, end: date) -> list[pd.DataFrame]:
    """The period_activity rows by month and by quarter (a rollup must be attached)."""
    return [
        tidy(
            src.con.execute(period_activity(src, start=start, end=end, period=period)),
            ["customer_id", "idx"],
        )
        for period in ("month", "quarter")
    ]


def same_as_daily(connect: Callable[[], object], frames: dict, rollup: Rollup) -> None:
    """period_activity with the rollup's month summaries == from its daily rows."""
    with_months = sources(connect(), frames, rollup)
    assert "rollup_months" in with_months.tables
    daily = sources(connect(), frames, rollup, months=False)
    assert_same(activity(with_months, **Q1), activity(daily, **Q1))


def assert_same(got: list[pd.DataFrame], want: list[pd.DataFrame]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(a, b)


# -- 1. the summary rows, by hand ------------------------------------------------------------


@pytest.mark.parametrize("how", ["one_rebuild", "two_refreshes"])
def test_summary_rows_hand_computed(tmp_path, how) -> None:
    if how == "one_rebuild":
        _, rollup = built(tmp_path, HAND)
        assert rollup.one_row_per_day()
    else:
        # even and odd events in two appends: a's Jan 2 logins, c's Jan 15 reports and b's
        # Feb 10 logins are each split over two files (partial rows, one day each)
        _, rollup = built(tmp_path, HAND[0::2], HAND[1::2])
        assert not rollup.one_row_per_day()
    assert summary_rows(rollup) == EXPECTED
    assert window_rows(rollup) == WINDOWS
    df = summary_frame(rollup)
    tail = df[df.active_days == 0]
    assert set(zip(tail.customer_id, tail.month.dt.date, strict=True)) == TAIL
    # the data ends on Mar 31 (b's report, 22:30 UTC on Mar 30), inside April's 56 days
    # (Mar 6..Apr 30): April is summarised, with b's tail row only; May's 56 days begin Apr 6
    prints = fingerprints(rollup.files())
    assert set(prints) == {JAN, FEB, MAR, APR}
    assert {m: e["fingerprint"] for m, e in manifest(rollup).items()} == prints
    assert json.loads(rollup.months.manifest_path.read_text())["version"] == 2
    files = rollup.months.current(rollup.files())
    with duckdb.connect() as con:
        schema = dict(
            con.execute(f"DESCRIBE SELECT * FROM read_parquet({files!r}, union_by_name = true)")
            .df()[["column_name", "column_type"]]
            .values.tolist()
        )
    want = {
        "customer_id": "VARCHAR",
        "month": "DATE",
        "active_days": "BIGINT",
        "last_day": "DATE",
        "d_7": "BIGINT",
        "d_28": "BIGINT",
        **dict.fromkeys(TYPES, "BIGINT"),
        "e_28": "BIGINT",
        "d_56": "BIGINT",
        "e_56": "BIGINT",
        **dict.fromkeys(WTYPES, "BIGINT"),
    }
    assert {c: schema.get(c) for c in want} == want


def test_a_month_the_files_span_without_rows(tmp_path, months_rebuilt, connect) -> None:
    # one file with days Jan 5 .. Mar 5: its statistics reach into February, which has no
    # day of activity; February is summarised (a's tail row only). April is not: its 56 days
    # begin Mar 6, the day after the file's last
    rows = (("a", "login", "2026-01-05 10:00"), ("a", "export", "2026-03-05 10:00"))
    store, rollup = built(tmp_path, rows)
    assert months_rebuilt[0] == [JAN, FEB, MAR]
    assert set(manifest(rollup)) == {JAN, FEB, MAR}
    # a, January: Jan 5, in the last 28 (Jan 4..31); March: Mar 5, in the last 28 (Mar 4..31)
    assert summary_rows(rollup) == {
        ("a", JAN): (1, date(2026, 1, 5), 0, 1, 0, 1, 0, 0),
        ("a", MAR): (1, date(2026, 3, 5), 0, 1, 1, 0, 0, 0),
    }
    # February's 56 days (Jan 4..Feb 28) hold Jan 5: a tail row; March's (Feb 4..Mar 31) hold
    # Mar 5 only
    assert window_rows(rollup) == {
        ("a", JAN): (1, 1, 1, 1, 0, 1, 0, 0),
        ("a", FEB): (0, 0, 1, 1, 0, 0, 0, 0),
        ("a", MAR): (1, 1, 1, 1, 1, 0, 0, 0),
    }
    frames = {"events": event_frame(rows)}
    same_as_daily(connect, frames, rollup)
    store.append(batch(("a", "login", "2026-02-25 10:00")))
    rollup.refresh(store)
    # the new file's only day, Feb 25, is in February and in March's 56 days (Feb 4..Mar 31),
    # not in April's (Mar 6..Apr 30): February and March are rebuilt, January is not
    assert months_rebuilt[-1] == [FEB, MAR]
    # a, February: Feb 25, in both windows (Feb 22..28, all of February)
    assert summary_rows(rollup)[("a", FEB)] == (1, date(2026, 2, 25), 1, 1, 0, 1, 0, 0)
    # February: Feb 25 (1 login) + tail Jan 5 = 2 days, 2 events in the 56; March: Mar 5 +
    # tail Feb 25 = 2 days, 2 events
    assert window_rows(rollup) == {
        ("a", JAN): (1, 1, 1, 1, 0, 1, 0, 0),
        ("a", FEB): (1, 1, 2, 2, 0, 1, 0, 0),
        ("a", MAR): (1, 1, 2, 2, 1, 0, 0, 0),
    }
    same_as_daily(
        connect, {"events": event_frame([*rows, ("a", "login", "2026-02-25 10:00")])}, rollup
    )


def test_attach_registers_the_summaries_and_period_activity_reads_them(tmp_path, connect) -> None:
    _, rollup = built(tmp_path, HAND)
    src = sources(connect(), {}, rollup)
    assert "rollup_months" in src.tables
    got = src.con.execute(src.rollup_months)
    assert (got.active_days > 0).sum() == len(EXPECTED)
    assert (got.active_days == 0).sum() == len(TAIL)  # c's February, b's April
    # period_activity leaves the tail rows out: c by month is January and March (idx 0, 2),
    # not February; b is February and March
    rows = src.con.execute(period_activity(src, **Q1, period="month"))
    assert tidy(rows[rows.customer_id == "c"], ["idx"]).idx.tolist() == [0, 2]
    assert tidy(rows[rows.customer_id == "b"], ["idx"]).idx.tolist() == [1, 2]
    # period_activity by month reads the summaries: without c's rows there, c is gone by
    # month and by quarter, but not by week (weeks always read the daily rows)
    m = src.rollup_months
    src.tables["rollup_months"] = m.filter(m.customer_id != "c")
    for period, c_rows in (("month", 0), ("quarter", 0), ("week", 2)):
        rows = src.con.execute(period_activity(src, **Q1, period=period))
        assert (rows.customer_id == "c").sum() == c_rows, period
    # by month: the rows are the summaries (idx 0 = January), here a's
    rows = src.con.execute(period_activity(src, **Q1, period="month"))
    a = tidy(rows[rows.customer_id == "a"], ["idx"])
    assert a.idx.tolist() == [0, 1, 2] and a.active_days.tolist() == [5, 1, 1]
    assert a.d_7.tolist() == [2, 0, 0] and a.d_28.tolist() == [4, 1, 0]
    # by quarter (Q1 = idx 0): a's days 5 + 1 + 1 = 7, last day Mar 1; the windows are
    # March's (the quarter's last month): 0 and 0; logins 3 + 1 = 4
    rows = src.con.execute(period_activity(src, **Q1, period="quarter"))
    a = rows[rows.customer_id == "a"].iloc[0]
    assert (a.idx, a.active_days, a.d_7, a.d_28, a.n_login) == (0, 7, 0, 0, 4)
    assert pd.Timestamp(a.last_day).date() == date(2026, 3, 1)
    b = rows[rows.customer_id == "b"].iloc[0]
    # b: Feb 10, 22, 27 + Mar 24, 29, 31 = 6 days; March's last 7: 29, 31; last 28: 3
    assert (b.active_days, b.d_7, b.d_28, b.n_login, b.n_report) == (6, 2, 3, 4, 2)


# -- 2. incremental upkeep -------------------------------------------------------------------


def test_refresh_rebuilds_only_the_months_whose_files_changed(
    tmp_path, months_rebuilt, connect
) -> None:
    store = EventStore(tmp_path / "events")
    store.append(batch(*HAND))
    rollup = Rollup(tmp_path / "rollup", timezone=BERLIN)
    rollup.rebuild(store)
    assert months_rebuilt == [[JAN, FEB, MAR, APR]]  # April: b's tail (Mar 24..31)
    expected = dict(EXPECTED)
    windows = dict(WINDOWS)

    def step(rows: tuple, rebuilt: list[date]) -> None:
        before = manifest(rollup)
        store.append(batch(*rows))
        assert rollup.refresh(store).mode == "incremental"
        assert months_rebuilt[-1] == rebuilt
        after = manifest(rollup)
        for month in set(before) - set(rebuilt):  # other months: the same folders and files
            assert after[month] == before[month], month
        for month in set(before) & set(rebuilt):
            assert after[month]["folder"] != before[month]["folder"]
        assert set(after) == set(before) | set(rebuilt)
        assert rollup.update_months() == []  # nothing left to do
        assert summary_rows(rollup) == expected
        assert window_rows(rollup) == windows

    # one new day, March 26: March and April are rebuilt (Mar 26 is in April's 56 days, Mar
    # 6..Apr 30; not in May's, Apr 6..May 31). b, March: days Mar 24, 26, 29, 31 = 4; last 7
    # (Mar 25..31): 26, 29, 31 = 3; last 28: 4; export 1, login 2, report 1. Windows: e_28 3 +
    # 1 = 4, n28_export 1; 56: 6 + 1 days, 7 + 1 events. b, April (tail): Mar 24, 26, 29, 31
    expected[("b", MAR)] = (4, date(2026, 3, 31), 3, 4, 1, 2, 0, 1)
    windows[("b", MAR)] = (4, 4, 7, 8, 1, 2, 0, 1)
    windows[("b", APR)] = (0, 0, 4, 4, 0, 0, 0, 0)
    step((("b", "export", "2026-03-26 12:00"),), [MAR, APR])
    # one new day in April: 22:30 UTC on Mar 31 is Apr 1 00:30 CEST. April only: Apr 1 is
    # before May's 56 days (Apr 6..). c, April: Apr 1, in neither window (Apr 24..30, Apr
    # 3..30); one page view; 56 (Mar 6..Apr 30): Apr 1 only (c's Mar 3 is before Mar 6)
    expected[("c", APR)] = (1, date(2026, 4, 1), 0, 0, 0, 0, 1, 0)
    windows[("c", APR)] = (1, 0, 1, 1, 0, 0, 0, 0)
    step((("c", "Page View", "2026-03-31 22:30"),), [APR])
    # late events for January: a logs in on Jan 20 again (that customer-day is now split
    # over the compacted file and this refresh's partial file: still ONE active day), and c
    # on Jan 16 (a new day). The new file's days, Jan 16..20, are in January and February's
    # 56 days (Jan 4..Feb 28), not March's (Feb 4..Mar 31): January and February are rebuilt.
    # a, January: days still 5, logins 3 + 1 = 4; e_28 4 + 1, n28_login 2, e_56 6 + 1.
    # a, February: tail events 4 + 1 = 5, e_56 5 + 1 = 6. c, January: days Jan 15, 16 = 2,
    # last Jan 16, both in the last 28 only; login 1; e_28 = e_56 = 3 + 1. c, February
    # (tail): Jan 15, 16 = 2 days, 4 events
    expected[("a", JAN)] = (5, date(2026, 1, 31), 2, 4, 1, 4, 1, 1)
    expected[("c", JAN)] = (2, date(2026, 1, 16), 0, 2, 0, 1, 0, 3)
    windows[("a", JAN)] = (5, 5, 5, 7, 1, 2, 1, 1)
    windows[("a", FEB)] = (1, 1, 5, 6, 0, 1, 0, 0)
    windows[("c", JAN)] = (2, 4, 2, 4, 0, 1, 0, 3)
    windows[("c", FEB)] = (0, 0, 2, 4, 0, 0, 0, 0)
    step((("a", "login", "2026-01-20 18:00"), ("c", "login", "2026-01-16 09:00")), [JAN, FEB])
    assert not rollup.one_row_per_day()
    # nothing new: nothing rebuilt
    assert rollup.refresh(store).mode == "current"
    assert months_rebuilt[-1] == []

    # the same numbers as summaries of a fresh rebuild of the store
    fresh = Rollup(tmp_path / "fresh", timezone=BERLIN)
    fresh.rebuild(store)
    assert summary_rows(fresh) == expected
    assert window_rows(fresh) == windows
    # period_activity on the partial rollup: from the summaries == from its daily rows
    frames = {"events": event_frame([*HAND, *_later_rows()])}
    same_as_daily(connect, frames, rollup)

    # compaction rewrites every file: every month is rebuilt, and the numbers stay
    assert rollup.compact() > 0
    assert sorted(months_rebuilt[-1]) == [JAN, FEB, MAR, APR]
    assert rollup.one_row_per_day()
    assert summary_rows(rollup) == expected
    assert window_rows(rollup) == windows
    assert rollup.update_months() == []
    same_as_daily(connect, frames, rollup)
    # and the metrics == on raw events
    want = figures(sources(connect(), frames), **Q1)
    assert_same(figures(sources(connect(), frames, rollup), **Q1), want)


def _later_rows() -> tuple:
    return (
        ("b", "export", "2026-03-26 12:00"),
        ("c", "Page View", "2026-03-31 22:30"),
        ("a", "login", "2026-01-20 18:00"),
        ("c", "login", "2026-01-16 09:00"),
    )


@pytest.mark.parametrize("built_ago", [0, 2 * 3600], ids=["built-just-now", "built-2h-ago"])
def test_a_reader_keeps_its_snapshot_and_replaced_folders_go_later(
    tmp_path, connect, monkeypatch, built_ago
) -> None:
    """Replaced month folders stay KEEP_SECONDS (an hour) for readers still using them: a
    Sources attached before a refresh reads its own snapshot. ``built_ago``: the summaries
    were built that long before the refresh replaces March (yesterday's refresh, say)."""
    store, rollup = built(tmp_path, HAND)
    frames = {"events": event_frame(HAND)}
    old = sources(connect(), frames, rollup)  # attached; nothing read yet
    assert "rollup_months" in old.tables
    before = manifest(rollup)
    if built_ago:
        stamp = time.time() - built_ago
        for entry in before.values():
            os.utime(rollup.months.dir / entry["folder"], (stamp, stamp))
    store.append(batch(("b", "export", "2026-03-26 12:00")))
    rollup.refresh(store)
    after = manifest(rollup)
    assert after[MAR]["folder"] != before[MAR]["folder"]
    # March's replaced folder is still there, however long ago it was built
    assert (rollup.months.dir / before[MAR]["folder"]).is_dir(), "replaced folder deleted at once"
    # the reader attached before the refresh reads its own snapshot (for the first time now)
    assert as_rows(old.con.execute(old.rollup_months)) == EXPECTED
    assert_same(figures(old, **Q1), figures(sources(connect(), frames), **Q1))
    listed = {e["folder"] for e in after.values()}
    on_disk = {p.name for p in rollup.months.dir.iterdir() if p.is_dir()}
    replaced = {e["folder"] for m, e in before.items() if after.get(m) != e}
    assert before[MAR]["folder"] in replaced and on_disk - listed == replaced
    # once older than KEEP_SECONDS, the next update drops it (and nothing listed)
    monkeypatch.setattr(rollup_months, "KEEP_SECONDS", -60)
    assert rollup.update_months() == []
    on_disk = {p.name for p in rollup.months.dir.iterdir() if p.is_dir()}
    assert on_disk == listed
    assert rollup.months.current(rollup.files())
    frames = {"events": event_frame([*HAND, ("b", "export", "2026-03-26 12:00")])}
    same_as_daily(connect, frames, rollup)


def test_retired_folders_stay_keep_seconds_from_their_retirement(
    tmp_path, connect, monkeypatch
) -> None:
    """A replaced folder is listed under ``retired`` with the time it stopped being listed,
    kept until KEEP_SECONDS after that (however old its files), then deleted by the next
    update. The clock of :mod:`keepwell.metrics.rollup_months` is a fake one here."""
    keep = rollup_months.KEEP_SECONDS
    t0 = time.time()
    clock = [t0]
    monkeypatch.setattr(rollup_months, "time", SimpleNamespace(time=lambda: clock[0]))
    store, rollup = built(tmp_path, HAND)
    assert retired(rollup) == {}
    first = manifest(rollup)
    reader = sources(connect(), {}, rollup)  # attached to the first folders
    stamp = t0 - 10 * keep  # built long ago: only the time since retirement counts
    for entry in first.values():
        os.utime(rollup.months.dir / entry["folder"], (stamp, stamp))

    def on_disk() -> set[str]:
        return {p.name for p in rollup.months.dir.iterdir() if p.is_dir()}

    # at t0, a day on Mar 26 replaces March and April (its 56 days, Mar 6..Apr 30)
    store.append(batch(("b", "export", "2026-03-26 12:00")))
    rollup.refresh(store)
    second = manifest(rollup)
    gone_1 = {first[MAR]["folder"], first[APR]["folder"]}
    assert {e["folder"] for e in second.values()} & gone_1 == set()
    assert retired(rollup) == dict.fromkeys(gone_1, t0)
    # half the time later, a day on Mar 27 replaces them again: the first retirees keep
    # their time, the new ones get theirs
    clock[0] = t0 + keep / 2
    store.append(batch(("a", "login", "2026-03-27 12:00")))
    rollup.refresh(store)
    third = manifest(rollup)
    gone_2 = {second[MAR]["folder"], second[APR]["folder"]}
    listed = {e["folder"] for e in third.values()}
    assert retired(rollup) == {**dict.fromkeys(gone_1, t0), **dict.fromkeys(gone_2, clock[0])}
    assert on_disk() == listed | gone_1 | gone_2
    # exactly KEEP_SECONDS after the first retirement: everything is still there, and the
    # reader attached first still reads its snapshot
    clock[0] = t0 + keep
    assert rollup.update_months() == []
    assert on_disk() == listed | gone_1 | gone_2
    assert as_rows(reader.con.execute(reader.rollup_months)) == EXPECTED
    # a second later the first retirees are deleted, the second ones stay
    clock[0] = t0 + keep + 1
    assert rollup.update_months() == []
    assert on_disk() == listed | gone_2
    assert retired(rollup) == dict.fromkeys(gone_2, t0 + keep / 2)
    # and KEEP_SECONDS (and a second) after their retirement, the second ones too
    clock[0] = t0 + keep / 2 + keep + 1
    assert rollup.update_months() == []
    assert on_disk() == listed
    assert retired(rollup) == {}
    assert manifest(rollup) == third
    rows = [*HAND, ("b", "export", "2026-03-26 12:00"), ("a", "login", "2026-03-27 12:00")]
    same_as_daily(connect, {"events": event_frame(rows)}, rollup)


def test_a_second_attach_after_a_refresh_reads_the_new_data(tmp_path, connect) -> None:
    """attach on the same Sources after a refresh: metrics built before (tables shared
    between metrics, keyed by the attached views' names) are not reused."""
    store, rollup = built(tmp_path, HAND)
    frames = {"events": event_frame(HAND)}
    src = sources(connect(), frames, rollup)
    before = figures(src, **Q1)
    assert before[0].period_actives.tolist() == [2, 2, 3]  # Jan a, c; Feb a, b; Mar a, b, c
    # d: Feb 10 and Mar 10
    new = (("d", "login", "2026-02-10 12:00"), ("d", "export", "2026-03-10 12:00"))
    store.append(batch(*new))
    rollup.refresh(store)
    rollup.attach(src)
    assert "rollup_months" in src.tables
    after = figures(src, **Q1)
    assert after[0].period_actives.tolist() == [2, 3, 4]
    frames = {"events": event_frame([*HAND, *new])}
    assert_same(after, figures(sources(connect(), frames), **Q1))
    assert_same(activity(src, **Q1), activity(sources(connect(), frames, rollup), **Q1))


def test_a_new_time_zone_rebuilds_every_month_in_it(tmp_path, months_rebuilt) -> None:
    store, rollup = built(tmp_path, HAND)
    utc = Rollup(rollup.path, timezone="UTC")
    assert utc.refresh(store).mode == "rebuild"
    # the rebuild's, then refresh's own; the last UTC day, Mar 30, is in April's 56 days
    assert months_rebuilt[-2:] == [[JAN, FEB, MAR, APR], []]
    # UTC days: a's 22:30 and 23:30 events of Jan 31 are January, Feb 28 23:30 is February,
    # and Jan 3 23:30 is Jan 3 (before the last 28, Jan 4..31)
    assert summary_rows(utc) == {
        # a: Jan 2, 3, 20, 25, 31 = 5; last 7: 25, 31 = 2; last 28: 20, 25, 31 = 3;
        # logins 2 + 1 + 1 = 4, export, page view, report 1 each
        ("a", JAN): (5, date(2026, 1, 31), 2, 3, 1, 4, 1, 1),
        # a: Feb 28, in both windows (Feb 22..28, all of February); one export
        ("a", FEB): (1, date(2026, 2, 28), 1, 1, 1, 0, 0, 0),
        # b: Feb 10, 21, 27; last 7: 27 only (Feb 21 is the day before Feb 22)
        ("b", FEB): (3, date(2026, 2, 27), 1, 3, 1, 2, 0, 1),
        # b: Mar 24, 29, 30 (22:30 UTC); last 7: 29, 30; last 28: all
        ("b", MAR): (3, date(2026, 3, 30), 2, 3, 0, 2, 0, 1),
        ("c", JAN): (1, date(2026, 1, 15), 0, 1, 0, 0, 0, 3),
        ("c", MAR): (1, date(2026, 3, 3), 0, 0, 0, 1, 0, 0),
    }
    # the windows differ from Berlin's for a only (b's and c's days move within windows)
    assert window_rows(utc) == {
        **WINDOWS,
        # a, January: last 28 (Jan 4..31): Jan 20 export, 25 login, 31 page view + login = 4
        # events; 56: days 2, 3, 20, 25, 31 with 2 + 1 + 1 + 1 + 2 = 7 events
        ("a", JAN): (5, 4, 5, 7, 1, 2, 1, 0),
        # a, February: Feb 28 export (in the last 28, all of February); 56 (Jan 4..Feb 28):
        # + Jan 20, 25, 31 (Jan 3 is out) = 4 days, 1 + 4 = 5 events
        ("a", FEB): (1, 1, 4, 5, 1, 0, 0, 0),
        # a, March: no March day (Berlin's Mar 1 is Feb 28 here): a tail row, Feb 28 in March's
        # 56 (Feb 4..Mar 31)
        ("a", MAR): (0, 0, 1, 1, 0, 0, 0, 0),
    }


# -- 3. staleness ----------------------------------------------------------------------------


def _daily_file(path: Path, day: date) -> str:
    """A Parquet file shaped like a daily rollup file, with one row on ``day``."""
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array(["z"], pa.string()),
                "day": pa.array([day], pa.date32()),
                "events": pa.array([1], pa.int64()),
                "value_sum": pa.array([0.0], pa.float64()),
                "n_login": pa.array([1], pa.int64()),
                "v_login": pa.array([0.0], pa.float64()),
            }
        ),
        path,
    )
    return str(path)


def test_summaries_that_do_not_match_the_rollup_are_not_used(
    tmp_path, connect, months_rebuilt
) -> None:
    _, rollup = built(tmp_path, HAND)
    files = rollup.files()
    assert rollup.months.current(files)
    # another reader of the same folder agrees
    assert MonthSummaries(rollup.path).current(files) == rollup.months.current(files)
    # a file the summaries have not seen: in a month they have (February), in one they have
    # not (June)
    feb = _daily_file(tmp_path / "feb.parquet", date(2026, 2, 3))
    june = _daily_file(tmp_path / "june.parquet", date(2026, 6, 3))
    assert MonthSummaries(rollup.path).current([*files, feb]) is None
    assert MonthSummaries(rollup.path).current([*files, june]) is None
    # a snapshot without a file the summaries were built from
    assert MonthSummaries(rollup.path).current([]) in (None, [])

    frames = {"events": event_frame(HAND)}
    want = figures(sources(connect(), frames), **Q1)
    with_months = sources(connect(), frames, rollup)
    assert "rollup_months" in with_months.tables
    assert_same(figures(with_months, **Q1), want)
    want_rows = activity(with_months, **Q1)

    def stale_then_repaired(
        change: Callable[[dict], None], rebuilt: list[date], *, metrics: bool = False
    ) -> None:
        edit_manifest(rollup, change)
        assert rollup.months.current(rollup.files()) is None
        src = sources(connect(), frames, rollup)
        assert "rollup_months" not in src.tables and src.has_rollup
        if metrics:
            assert_same(figures(src, **Q1), want)  # the daily rows: the same numbers
        assert_same(activity(src, **Q1), want_rows)
        assert rollup.update_months() == rebuilt
        assert summary_rows(rollup) == EXPECTED

    # a month missing from the manifest: only it is rebuilt
    stale_then_repaired(lambda m: m.pop("2026-02-01"), [FEB], metrics=True)
    # a month's fingerprint differs
    stale_then_repaired(lambda m: m["2026-03-01"].update(fingerprint="0" * 40), [MAR])
    # a month in the manifest that the rollup does not have (it is dropped, nothing built)
    stale_then_repaired(
        lambda m: m.update({"2025-06-01": dict(m["2026-01-01"], folder="gone")}), []
    )
    assert set(manifest(rollup)) == {JAN, FEB, MAR, APR}
    # April (tail rows only) missing: only it is rebuilt
    stale_then_repaired(lambda m: m.pop("2026-04-01"), [APR])
    assert window_rows(rollup) == WINDOWS
    # an unreadable manifest: every month is rebuilt (April too: the data's last day, Mar
    # 31, is in its 56 days)
    rollup.months.manifest_path.write_text("{not json")
    assert rollup.months.current(rollup.files()) is None
    assert "rollup_months" not in sources(connect(), frames, rollup).tables
    assert rollup.update_months() == [JAN, FEB, MAR, APR]
    assert summary_rows(rollup) == EXPECTED
    # a manifest of another layout version (1: no e_28, d_56 ... columns): rebuilt whole
    data = json.loads(rollup.months.manifest_path.read_text())
    rollup.months.manifest_path.write_text(json.dumps({**data, "version": 1}))
    assert rollup.months.current(rollup.files()) is None
    assert rollup.update_months() == [JAN, FEB, MAR, APR]
    assert window_rows(rollup) == WINDOWS
    # all summaries gone (files and manifest)
    shutil.rmtree(rollup.months.dir)
    assert rollup.months.current(rollup.files()) is None
    assert "rollup_months" not in sources(connect(), frames, rollup).tables
    assert rollup.update_months() == [JAN, FEB, MAR, APR]
    assert summary_rows(rollup) == EXPECTED
    assert window_rows(rollup) == WINDOWS


def test_a_refresh_whose_month_update_did_not_run(tmp_path, connect, monkeypatch) -> None:
    # the rollup gets a new file but the months are not updated (a crash between the two):
    # the summaries are stale, attach leaves them out, the next update rebuilds March and
    # April only
    store, rollup = built(tmp_path, HAND)
    monkeypatch.setattr(MonthSummaries, "update", lambda self, files, **kw: [])
    store.append(batch(("b", "export", "2026-03-26 12:00")))
    assert rollup.refresh(store).mode == "incremental"
    monkeypatch.undo()
    assert rollup.months.current(rollup.files()) is None
    frames = {"events": event_frame([*HAND, ("b", "export", "2026-03-26 12:00")])}
    src = sources(connect(), frames, rollup)
    assert "rollup_months" not in src.tables
    one = [CASES[0]]
    assert_same(figures(src, **Q1, cases=one), figures(sources(connect(), frames), **Q1, cases=one))
    # Mar 26 is in March and in April's 56 days (Mar 6..Apr 30)
    assert rollup.update_months() == [MAR, APR]
    # b, March: Mar 24, 26, 29, 31 = 4; last 7 (Mar 25..31): 26, 29, 31 = 3
    assert summary_rows(rollup)[("b", MAR)] == (4, date(2026, 3, 31), 3, 4, 1, 2, 0, 1)
    # b, April (tail): Mar 24, 26, 29, 31 = 4 days, 4 events
    assert window_rows(rollup)[("b", APR)] == (0, 0, 4, 4, 0, 0, 0, 0)
    same_as_daily(connect, frames, rollup)


# -- 4. the same results with and without summaries, and from raw events ---------------------

NAMES = ("login", "Login", "Report Created", "export", "page-view")
INDUSTRIES = ("travel", "retail", "software", None)
R = {"start": date(2025, 10, 1), "end": date(2026, 7, 1)}  # 2025-10 .. 2026-06, Q4 .. Q2


def random_business() -> tuple[list[tuple], pd.DataFrame]:
    """40 customers (seeded) over 2025-01 .. 2026-07: each active in a random subset of the
    months from a random first one (gaps), 1-9 events at any hour of an active month, now
    and then a 23:30 UTC event on its last day (the next month in Berlin) and a duplicate;
    every eighth customer also has history in 2024-05/06 (before every calendar: EARLIER
    rows). July 2026 is after the report. "zz" has no customers row; "Invite" happens from
    April 2026 only."""
    rng = np.random.default_rng(20261122)
    months = pd.date_range("2025-01-01", "2026-07-01", freq="MS")
    rows: list[tuple] = []
    customers = []
    for i in range(40):
        cid = f"c{i:02d}"
        customers.append((cid, INDUSTRIES[i % 4]))
        if i % 8 == 0:
            rows.append((cid, "login", pd.Timestamp("2024-05-31 23:30")))  # Jun 1 local
            rows.append((cid, "export", pd.Timestamp(f"2024-06-{10 + i % 9} 10:00")))
        first = int(rng.integers(0, len(months) - 2))
        p_active = rng.uniform(0.3, 0.9)
        for m in months[first:]:
            if rng.random() > p_active:
                continue
            for _ in range(int(rng.integers(1, 10))):
                at = m + pd.Timedelta(
                    days=int(rng.integers(0, m.days_in_month)),
                    hours=int(rng.integers(0, 24)),
                    minutes=int(rng.choice([0, 30])),
                )
                rows.append((cid, str(rng.choice(NAMES)), at))
            if rng.random() < 0.3:
                rows.append((cid, "login", m + pd.offsets.MonthEnd(0) + pd.Timedelta("23:30:00")))
            if rng.random() < 0.1:
                rows.append(rows[-1])
    rows.append(("zz", "export", pd.Timestamp("2026-02-03 08:00")))
    # a type first seen in the last months: summaries built before it lack its column
    rows += [
        (f"c{i:02d}", "Invite", pd.Timestamp(f"2026-0{4 + i % 3}-1{i % 9} 09:00"))
        for i in range(0, 40, 5)
    ]
    frame = pd.DataFrame(
        {
            "customer_id": [c for c, _ in customers],
            "signup_at": pd.Timestamp("2025-01-01"),
            "industry": [ind for _, ind in customers],
            "country": "DE",
            "status": "active",
        }
    )
    return rows, frame


@pytest.fixture(scope="module")
def business(tmp_path_factory) -> Iterator[dict]:
    """The random business: an incrementally kept rollup (partial rows, late events), a
    rebuilt one, and the Sources the comparisons use."""
    rows, customers = random_business()
    root = tmp_path_factory.mktemp("business")
    rng = np.random.default_rng(5)
    late = rng.random(len(rows)) < 0.15  # appended last: late events for old months
    cut1, cut2 = pd.Timestamp("2025-10-01"), pd.Timestamp("2026-03-01")
    parts = [
        [r for r, lt in zip(rows, late, strict=True) if not lt and r[2] < cut1],
        [r for r, lt in zip(rows, late, strict=True) if not lt and cut1 <= r[2] < cut2],
        [r for r, lt in zip(rows, late, strict=True) if not lt and r[2] >= cut2],
        [r for r, lt in zip(rows, late, strict=True) if lt],
    ]
    store = EventStore(root / "events")
    kept = Rollup(root / "kept", timezone=BERLIN)
    for part in parts:
        store.append(batch(*part))
        kept.refresh(store)
    rebuilt = Rollup(root / "rebuilt", timezone=BERLIN)
    rebuilt.rebuild(store)
    frames = {"events": event_frame(rows), "customers": customers}
    cons = []

    def src(rollup: Rollup | None = None, *, months: bool = True) -> Sources:
        con = ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        cons.append(con)
        return sources(con, frames, rollup, months=months)

    out = {
        "rows": rows,
        "kept": kept,
        "rebuilt": rebuilt,
        "months_partial": src(kept),
        "months_compacted": src(rebuilt),
        "daily": src(kept, months=False),
        "raw": src(),
    }
    yield out
    for con in cons:
        con.disconnect()


def test_random_business_has_what_the_comparison_needs(business) -> None:
    assert not business["kept"].one_row_per_day()  # partial rows over customer-days
    assert business["rebuilt"].one_row_per_day()
    for name in ("months_partial", "months_compacted"):
        assert "rollup_months" in business[name].tables
    assert "rollup_months" not in business["daily"].tables and business["daily"].has_rollup
    assert not business["raw"].has_rollup
    summaries = business["months_partial"].rollup_months
    months = business["months_partial"].con.execute(summaries.month.nunique())
    assert months >= 20  # 2024-06 .. 2026-07 less a gap or none
    rows = business["rows"]
    assert sum(pd.Timestamp(r[2]).strftime("%H:%M") == "23:30" for r in rows) >= 30
    assert len(rows) > len(set(rows))  # duplicates
    kept = business["kept"]
    # customer-days split over several refreshes (late events): partial rows
    with duckdb.connect() as con:
        (stored,) = con.execute(f"SELECT count(*) FROM ({kept.sql(exact=False)})").fetchone()
        (exact,) = con.execute(f"SELECT count(*) FROM ({kept.sql()})").fetchone()
    assert stored > exact
    # months summarised before "invite" existed lack its column
    with_invite = []
    for entry in manifest(kept).values():
        for f in entry["files"]:
            names = pq.read_schema(kept.months.dir / entry["folder"] / f).names
            with_invite.append("n_invite" in names)
    assert any(with_invite) and not all(with_invite)
    assert summary_rows(business["kept"]) == summary_rows(business["rebuilt"])


@pytest.mark.parametrize("period", ["month", "quarter"])
@pytest.mark.parametrize(("builder", "kw"), CASES)
def test_metrics_agree_with_and_without_summaries_and_on_raw_events(
    business, builder, kw, period
) -> None:
    def run(name: str) -> pd.DataFrame:
        src = business[name]
        return tidy(src.con.execute(builder(src, **R, period=period, **kw)))

    want = run("raw")
    assert len(want) > 0
    for name in ("months_partial", "months_compacted", "daily"):
        pd.testing.assert_frame_equal(run(name), want, obj=name)


@pytest.mark.parametrize("period", ["month", "quarter"])
def test_period_activity_rows_agree_with_and_without_summaries(business, period) -> None:
    def run(name: str) -> pd.DataFrame:
        src = business[name]
        rows = src.con.execute(period_activity(src, **R, period=period))
        return tidy(rows, ["customer_id", "idx"])

    want = run("daily")
    assert (want.idx < 0).any() and (want.idx == -1_000_000).any()  # history, EARLIER rows
    for name in ("months_partial", "months_compacted"):
        pd.testing.assert_frame_equal(run(name), want, obj=name)


# -- 5. vacuum -------------------------------------------------------------------------------


def test_vacuum_keeps_the_month_summaries(tmp_path, connect) -> None:
    store, rollup = built(tmp_path, HAND, _later_rows())
    assert rollup.compact() > 0  # the files it replaced are now vacuum's to delete
    want = summary_rows(rollup)
    listed = {e["folder"] for e in manifest(rollup).values()}
    assert rollup.vacuum(retention_hours=0) > 0
    assert rollup.months.manifest_path.exists()
    assert {e["folder"] for e in manifest(rollup).values()} == listed
    for f in rollup.months.current(rollup.files()):
        assert Path(f).exists(), f
    assert summary_rows(rollup) == want
    frames = {"events": event_frame([*HAND, *_later_rows()])}
    src = sources(connect(), frames, rollup)
    assert "rollup_months" in src.tables
    same_as_daily(connect, frames, rollup)
    # and it stays incremental afterwards
    store.append(batch(("a", "login", "2026-02-14 12:00")))
    rollup.refresh(store)
    assert rollup.months.current(rollup.files())


# -- 6. empty ---------------------------------------------------------------------------------


@pytest.mark.parametrize("appended", [False, True], ids=["never-written", "empty-append"])
def test_empty_store_and_rollup(tmp_path, connect, appended) -> None:
    store = EventStore(tmp_path / "events")
    if appended:
        store.append(batch())
    rollup = Rollup(tmp_path / "rollup", timezone=BERLIN)
    rollup.refresh(store)
    assert rollup.update_months() == []
    assert not rollup.months.current(rollup.files())
    src = sources(connect(), {}, rollup)
    assert src.has_rollup and "rollup_months" not in src.tables
    cases = SOME if appended else CASES
    got = figures(src, **Q1, cases=cases)
    assert_same(got, figures(sources(connect(), {}), **Q1, cases=cases))
    active = got[0]  # active_customers by month: January .. March, nobody
    assert active.period.tolist() == ["2026-01", "2026-02", "2026-03"]
    assert active.period_actives.tolist() == [0, 0, 0]
    assert all(len(rows) == 0 for rows in activity(src, **Q1))  # no period_activity rows
