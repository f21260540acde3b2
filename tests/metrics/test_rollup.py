"""The daily rollup: exact, incremental (reads only new files), local days, crash/race safety."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from keepwell.config import Settings
from keepwell.errors import InvalidInput, StoreError
from keepwell.events.store import EventStore
from keepwell.metrics.engagement import active_customers
from keepwell.metrics.rollup import Rollup
from keepwell.metrics.sources import Sources

BERLIN = "Europe/Berlin"


def batch(*rows: tuple) -> pa.Table:
    """Events: (customer_id, event, 'YYYY-MM-DD HH:MM' UTC[, value])."""
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "event": pa.array([r[1] for r in rows], pa.string()),
            "occurred_at": pa.array(
                [datetime.fromisoformat(r[2]).replace(tzinfo=UTC) for r in rows],
                pa.timestamp("us", tz="UTC"),
            ),
            "value": pa.array([r[3] if len(r) > 3 else None for r in rows], pa.float64()),
        }
    )


def table(rollup: Rollup) -> pd.DataFrame:
    """The exact rollup, sorted, days as text."""
    with duckdb.connect() as con:
        df = con.execute(rollup.sql()).df()
    df["day"] = pd.to_datetime(df["day"]).dt.date.astype(str)
    return df.sort_values(["customer_id", "day"]).reset_index(drop=True)


def rows(rollup: Rollup, *cols: str) -> dict[tuple[str, str], tuple]:
    return {
        (r.customer_id, r.day): tuple(getattr(r, c) for c in cols)
        for r in table(rollup).itertuples()
    }


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(tmp_path / "events")


@pytest.fixture
def rollup(tmp_path: Path) -> Rollup:
    return Rollup(tmp_path / "rollup", timezone=BERLIN)


def rebuilt(store: EventStore, tmp_path: Path, name: str = "check") -> Rollup:
    other = Rollup(tmp_path / name, timezone=BERLIN)
    other.rebuild(store)
    return other


def test_berlin_day_boundaries_and_value_sums(store, rollup) -> None:
    store.append(
        batch(
            ("a", "login", "2026-01-31 22:59", 1.0),  # Jan 31 23:59 Berlin
            ("a", "login", "2026-01-31 23:30", 2.0),  # Feb 1 00:30 Berlin
            ("a", "login", "2026-03-28 23:30"),  # Mar 29 00:30 (UTC+1)
            ("a", "login", "2026-03-29 22:30"),  # Mar 30 00:30 (UTC+2 since 29 Mar 01:00 UTC)
        )
    )
    result = rollup.refresh(store)
    assert result.mode == "rebuild" and result.reason == "no rollup yet"
    assert rows(rollup, "events", "value_sum", "n_login", "v_login") == {
        ("a", "2026-01-31"): (1, 1.0, 1, 1.0),
        ("a", "2026-02-01"): (1, 2.0, 1, 2.0),
        ("a", "2026-03-29"): (1, 0.0, 1, 0.0),
        ("a", "2026-03-30"): (1, 0.0, 1, 0.0),
    }
    utc = Rollup(rollup.path.parent / "utc", timezone="UTC")
    utc.refresh(store)
    assert sorted({day for _, day in rows(utc)}) == ["2026-01-31", "2026-03-28", "2026-03-29"]


def test_duplicates_and_events_before_signup_are_kept_as_is(store, rollup) -> None:
    # The rollup knows nothing of signups: every event counts, duplicates too.
    store.append(batch(*[("a", "login", "2020-01-01 12:00", 1.0)] * 3))
    rollup.refresh(store)
    assert rows(rollup, "events", "value_sum") == {("a", "2020-01-01"): (3, 3.0)}


def test_event_names_colliding_after_normalising_share_a_column(store, rollup) -> None:
    store.append(
        batch(
            ("a", "Page View", "2026-01-05 12:00", 1.0),
            ("a", "page-view", "2026-01-05 13:00", 2.0),
            ("a", "Report Created!", "2026-01-05 13:00"),
        )
    )
    rollup.refresh(store)
    assert rollup.event_types() == ["page_view", "report_created_"]
    assert rows(rollup, "n_page_view", "v_page_view", "n_report_created_") == {
        ("a", "2026-01-05"): (2, 3.0, 1)
    }


def test_incremental_refresh_equals_full_rebuild(store, rollup, tmp_path) -> None:
    store.append(batch(("a", "login", "2026-01-05 10:00", 1.0), ("b", "login", "2026-01-06 10:00")))
    rollup.refresh(store)
    store.append(batch(("a", "login", "2026-01-07 10:00", 2.0)))
    # a late event for an already rolled-up day, and a new event type
    store.append(
        batch(("a", "login", "2026-01-05 11:00", 4.0), ("b", "export", "2026-01-06 12:00", 5.0))
    )
    result = rollup.refresh(store)
    assert result.mode == "incremental" and result.new_event_types == ["export"]
    store.append(batch(("c", "Export", "2026-01-31 23:30")))
    rollup.refresh(store)
    expected = table(rebuilt(store, tmp_path))
    pd.testing.assert_frame_equal(table(rollup), expected)
    assert rows(rollup, "events", "n_login", "v_login", "n_export") == {
        ("a", "2026-01-05"): (2, 2, 5.0, 0),
        ("a", "2026-01-07"): (1, 1, 2.0, 0),
        ("b", "2026-01-06"): (2, 1, 0.0, 1),
        ("c", "2026-02-01"): (1, 0, 0.0, 1),
    }
    # files written before "export" existed read 0 for it; partials are still separate rows
    assert rollup.info().partial_files == 2  # the first build is compacted
    assert rollup.store_version() == store.version()


def test_rebuild_in_customer_ranges_equals_one_pass(store, tmp_path) -> None:
    customers = [f"c{i:02d}" for i in range(12)]
    for day in (5, 6):
        store.append(
            batch(
                *[(c, "login", f"2026-01-0{day} 10:00", 1.0) for c in customers],
                *[(c, "Export", f"2026-01-0{day} 23:30") for c in customers[::3]],
            )
        )
    one = Rollup(tmp_path / "one", timezone=BERLIN)
    one.rebuild(store)
    chunked = Rollup(tmp_path / "chunked", timezone=BERLIN, chunk_events=7)
    result = chunked.rebuild(store)
    # 23:30 UTC is the next day in Berlin: a day-6 export joins the day-6 login row, a day-7
    # export is a row of its own
    assert result.events_read == 2 * (12 + 4) and result.rows_written == 12 * 2 + 4
    assert result.new_event_types == ["export", "login"]
    pd.testing.assert_frame_equal(table(chunked), table(one))
    files = chunked.files()
    assert len(files) > 3  # ~7 events a range: several ranges, each its own sorted file
    ranges = []
    for f in files:
        ids = pq.read_table(f, columns=["customer_id", "day"]).to_pandas()
        assert ids.equals(ids.sort_values(["customer_id", "day"]))  # sorted within the file
        ranges.append((ids.customer_id.min(), ids.customer_id.max()))
    ranges.sort()
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))  # disjoint ranges
    assert chunked.one_row_per_day()  # one write: every customer-day is one row
    # and it stays incremental afterwards
    store.append(batch(("c01", "login", "2026-01-07 10:00")))
    assert chunked.refresh(store).mode == "incremental"
    assert rows(chunked, "events")[("c01", "2026-01-07")] == (1,)


@pytest.mark.parametrize("bad", [0, -5, 2.5, "many", True])
def test_chunk_size_must_be_a_positive_whole_number(tmp_path, bad) -> None:
    with pytest.raises(InvalidInput, match="chunk_events"):
        Rollup(tmp_path / "r", chunk_events=bad)


def test_failed_chunked_rebuild_leaves_no_files(store, tmp_path, monkeypatch) -> None:
    store.append(batch(*[(f"c{i}", "login", "2026-01-05 10:00") for i in range(10)]))
    chunked = Rollup(tmp_path / "chunked", timezone=BERLIN, chunk_events=3)
    calls = []
    real = Rollup._copy

    def copy_then_fail(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Rollup, "_copy", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        chunked.rebuild(store)
    assert not list((tmp_path / "chunked").glob("*.parquet"))
    assert chunked.files() == []


def test_refresh_reads_only_the_files_of_new_commits(store, rollup) -> None:
    store.append(batch(("a", "login", "2026-01-05 10:00")))
    store.append(batch(("b", "login", "2026-01-05 10:00")))
    assert len(rollup.refresh(store).files_read) == 2
    before = set(store.files())
    store.append(batch(("c", "login", "2026-01-06 10:00")))
    new = set(store.files()) - before
    result = rollup.refresh(store)
    assert result.mode == "incremental"
    assert set(result.files_read) == new and len(new) == 1
    assert (result.events_read, result.rows_written) == (1, 1)
    # compaction of the event store rewrites files without changing data: nothing to read
    store.compact()
    result = rollup.refresh(store)
    assert (result.mode, result.files_read) == ("incremental", [])
    assert rollup.refresh(store).mode == "current"
    assert sum(r[0] for r in rows(rollup, "events").values()) == 3


def test_compaction_consolidates_one_row_per_customer_day_sorted(store, rollup) -> None:
    for hour in (10, 11, 12):
        store.append(
            batch(("b", "login", f"2026-01-05 {hour}:00"), ("a", "login", "2026-01-05 09:00"))
        )
        rollup.refresh(store)
    store.append(batch(("a", "export", "2026-01-06 09:00")))
    rollup.refresh(store)
    before = table(rollup)
    assert rollup.info().rows > len(before)  # partial rows
    assert rollup.compact() == len(before) == 3
    info = rollup.info()
    assert (info.partial_files, info.rows) == (0, 3)
    pd.testing.assert_frame_equal(table(rollup), before)
    stored = pq.read_table(rollup.files()).to_pandas()
    assert list(stored.customer_id) == ["a", "a", "b"]  # sorted for per-customer scans
    assert rollup.compact() == 0  # nothing left to consolidate
    store.append(batch(("a", "login", "2026-01-05 20:00")))
    assert rollup.refresh(store).mode == "incremental"
    assert rows(rollup, "events")[("a", "2026-01-05")] == (4,)


def test_register_and_attach_give_metrics_the_rollup(store, rollup, tmp_path) -> None:
    import ibis

    store.append(batch(("a", "login", "2026-01-31 23:30"), ("b", "login", "2026-02-10 10:00")))
    rollup.refresh(store)
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    src = Sources.from_frames(con, {}, timezone=BERLIN)
    rollup.attach(src)
    assert src.has_rollup and src.extra["rollup_timezone"] == BERLIN
    out = con.execute(
        active_customers(src, start=datetime(2026, 1, 1).date(), end=datetime(2026, 3, 1).date())
    )
    assert list(out.period_actives) == [0, 2]  # a's event is Feb 1 in Berlin
    with duckdb.connect() as raw:
        rollup.register(raw, "r", exact=False)
        assert raw.execute("SELECT count(*), sum(events) FROM r").fetchone() == (2, 2)
    con.disconnect()


def test_metrics_agree_with_partial_rows_compacted_rows_and_raw_events(store, rollup) -> None:
    """Engagement metrics skip the per-day DISTINCT only when the rollup has one row per
    customer-day; with partial rows (the same day in two appends) they must regroup."""
    import ibis

    from keepwell.metrics.engagement import usage_frequency
    from keepwell.metrics.features import customer_features

    def sources(with_rollup: bool) -> Sources:
        con = ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        store.register(con.con, "raw_events")
        con.con.execute(
            "CREATE TEMP VIEW utc_events AS SELECT customer_id, event, "
            "CAST(occurred_at AT TIME ZONE 'UTC' AS TIMESTAMP) AS occurred_at, "
            "CAST(NULL AS VARCHAR) AS user_id, value FROM raw_events"
        )
        events = con.table("utc_events")
        subs = pd.DataFrame(
            {
                "customer_id": ["a", "b"],
                "plan": ["pro", "pro"],
                "mrr_minor": [1000, 1000],
                "currency": ["EUR", "EUR"],
                "started_at": pd.to_datetime(["2025-12-01", "2025-12-01"]),
                "ended_at": pd.to_datetime([None, None]),
            }
        )
        src = Sources.from_frames(con, {"subscriptions": subs}, timezone=BERLIN)
        src.tables["events"] = events
        if with_rollup:
            rollup.attach(src)
        return src

    def figures(src: Sources) -> tuple:
        start, end = datetime(2026, 1, 1).date(), datetime(2026, 3, 1).date()
        act = src.con.execute(active_customers(src, start=start, end=end))
        freq = src.con.execute(usage_frequency(src, start=start, end=end))
        feats = src.con.execute(customer_features(src, as_of=end)).drop(columns=["as_of"])
        return act, freq, feats

    def same(left: tuple, right: tuple) -> None:
        for a, b in zip(left, right, strict=True):
            pd.testing.assert_frame_equal(a, b)

    store.append(batch(("a", "login", "2026-01-05 10:00"), ("b", "login", "2026-02-20 09:00")))
    rollup.rebuild(store)
    store.append(
        batch(
            ("a", "login", "2026-01-05 12:00"),  # the same Berlin day again: a partial row
            ("a", "export", "2026-02-25 08:00"),
            ("b", "login", "2026-02-20 18:00"),
        )
    )
    rollup.refresh(store)
    raw = figures(sources(with_rollup=False))
    partial = sources(with_rollup=True)
    assert partial.extra["rollup_one_row_per_day"] is False
    same(figures(partial), raw)
    rollup.compact()
    compacted = sources(with_rollup=True)
    assert compacted.extra["rollup_one_row_per_day"] is True
    same(figures(compacted), raw)
    # a later day appended: a new partial file whose days no other file has, still one row
    # per customer-day (the daily-append case)
    store.append(batch(("b", "login", "2026-02-27 10:00")))
    rollup.refresh(store)
    assert rollup.info().partial_files == 1 and rollup.one_row_per_day()
    raw = figures(sources(with_rollup=False))
    same(figures(sources(with_rollup=True)), raw)
    feats = raw[2]
    assert list(feats.active_days_28) == [1, 2]  # a: Feb 25; b: Feb 20 (two events), Feb 27
    assert list(feats.events_prev_28) == [2, 0]  # a: two logins on Jan 5 (one Berlin day)
    assert list(feats.active_days_prev_28) == [1, 0]
    assert list(raw[0].period_actives) == [1, 2]


def test_attach_refuses_other_backends(rollup) -> None:
    class Fake:
        backend = "postgres"

    with pytest.raises(InvalidInput, match="DuckDB"):
        rollup.attach(Fake())


def test_empty_store_and_empty_rollup(store, rollup) -> None:
    assert rollup.refresh(store).mode == "current"
    assert rollup.files() == [] and not rollup.info().exists
    with duckdb.connect() as con:
        rollup.register(con)
        assert con.execute("SELECT * FROM kw_rollup").fetchall() == []
        names = [r[0] for r in con.execute("DESCRIBE kw_rollup").fetchall()]
    assert names == ["customer_id", "day", "events", "value_sum"]


def test_time_zone_change_rebuilds(store, rollup) -> None:
    store.append(batch(("a", "login", "2026-01-31 23:30")))
    rollup.refresh(store)
    utc = Rollup(rollup.path, timezone="UTC")
    result = utc.refresh(store)
    assert result.mode == "rebuild" and "time zone" in result.reason
    assert list(rows(utc)) == [("a", "2026-01-31")]


def test_lost_store_log_falls_back_to_a_rebuild(store, rollup, tmp_path) -> None:
    store.append(batch(("a", "login", "2026-01-05 10:00")))
    rollup.refresh(store)
    store.append(batch(("b", "login", "2026-01-05 10:00")))
    store.append(batch(("c", "login", "2026-01-05 10:00")))
    DeltaTable(str(store.path)).create_checkpoint()
    (store.path / "_delta_log" / f"{2:020d}.json").unlink()  # as log cleanup would
    result = rollup.refresh(store)
    assert result.mode == "rebuild" and "commit 2" in result.reason
    pd.testing.assert_frame_equal(table(rollup), table(rebuilt(store, tmp_path)))


def test_failed_commit_leaves_the_rollup_as_it_was(store, rollup, monkeypatch) -> None:
    store.append(batch(("a", "login", "2026-01-05 10:00")))
    rollup.refresh(store)
    store.append(batch(("b", "login", "2026-01-05 10:00")))
    before = (table(rollup), rollup.files(), rollup.store_version())

    def boom(*args, **kwargs):
        raise StoreError("disk full")

    monkeypatch.setattr(Rollup, "_commit", boom)
    with pytest.raises(StoreError, match="disk full"):
        rollup.refresh(store)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(table(rollup), before[0])
    assert (rollup.files(), rollup.store_version()) == before[1:]
    assert sorted(p.name for p in rollup.path.glob("*.parquet")) == sorted(
        Path(p).name for p in before[1]
    )  # the new files were removed
    assert rollup.refresh(store).mode == "incremental"
    assert len(table(rollup)) == 2


def test_racing_refreshes_never_double_count(store, rollup, monkeypatch) -> None:
    store.append(batch(("a", "login", "2026-01-05 10:00")))
    rollup.refresh(store)
    store.append(batch(("b", "login", "2026-01-05 10:00")))
    other = Rollup(rollup.path, timezone=BERLIN)
    original = Rollup._aggregate
    raced = []

    def aggregate(self, con, files):
        if not raced:  # another process refreshes while this one aggregates
            raced.append(True)
            assert other.refresh(store).mode == "incremental"
        return original(self, con, files)

    monkeypatch.setattr(Rollup, "_aggregate", aggregate)
    with pytest.raises(StoreError, match="committed first"):
        rollup.refresh(store)
    monkeypatch.undo()
    assert rows(rollup, "events") == {("a", "2026-01-05"): (1,), ("b", "2026-01-05"): (1,)}


def test_from_settings_uses_home_and_reporting_zone(tmp_path) -> None:
    settings = Settings(home=tmp_path, reporting_timezone=BERLIN)
    r = Rollup.from_settings(settings)
    assert (r.path, r.timezone) == ((tmp_path / "rollup").resolve(), BERLIN)
    with pytest.raises(InvalidInput, match="time zone"):
        Rollup(tmp_path / "x", timezone="Mars/Olympus")


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # py4j sockets
def test_spark_reads_the_rollup_files(store, rollup, spark_con) -> None:
    store.append(batch(("a", "login", "2026-01-05 10:00", 1.0)))
    rollup.refresh(store)
    store.append(
        batch(("a", "export", "2026-01-05 11:00", 2.0), ("b", "login", "2026-01-06 10:00"))
    )
    rollup.refresh(store)
    spark = spark_con._session
    df = spark.read.option("mergeSchema", "true").parquet(*rollup.files())
    df.createOrReplaceTempView("kw_rollup_parts")
    got = spark.sql(
        "SELECT customer_id, CAST(day AS STRING) AS day, SUM(events) AS events, "
        "COALESCE(SUM(n_export), 0) AS n_export FROM kw_rollup_parts "
        "GROUP BY customer_id, day ORDER BY customer_id, day"
    ).toPandas()
    assert got.values.tolist() == [["a", "2026-01-05", 2, 1], ["b", "2026-01-06", 1, 0]]


@pytest.mark.parametrize(
    "tz",
    [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",  # 30-minute DST
        "Pacific/Chatham",  # +12:45 / +13:45
        "America/Santiago",
    ],
)
def test_fast_local_day_equals_icu(tz: str) -> None:
    """The rollup's offset-table local day is exactly DuckDB's ICU conversion, 1965-2110
    (every 4.25 hours, plus a second before and after every transition of the zone)."""
    from keepwell.metrics.tz_offsets import local_day_sql, transitions

    edges = [s for s, _ in transitions(tz)[1:]]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "CREATE TEMP TABLE t AS SELECT TIMESTAMPTZ '1965-01-01 00:00:00+00' "
            "+ to_microseconds(i * 15300000000 - (i % 2)) AS ts FROM range(0, 300000) r(i)"
        )
        if edges:
            con.execute(
                "INSERT INTO t SELECT make_timestamptz(CAST((e + d) * 1000000 AS BIGINT)) "
                "FROM unnest(?) u(e), unnest([-1, 0, 1]) v(d)",
                [edges],
            )
        bad, total = con.execute(
            f"SELECT count(*) FILTER (WHERE ({local_day_sql(tz, 'ts')}) "
            f"<> CAST(timezone('{tz}', ts) AS DATE)), count(*) FROM t"
        ).fetchone()
    assert total >= 300_000 and bad == 0


def test_public_names() -> None:
    from keepwell.metrics import rollup as module

    assert set(module.__all__) == {"BASE_COLUMNS", "RefreshResult", "Rollup", "RollupInfo"}
    assert all(hasattr(module, name) for name in module.__all__)
