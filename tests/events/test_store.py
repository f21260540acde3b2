"""EventStore: round trips, schema checks, idempotent batches, compaction, vacuum."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from keepwell.config import Settings
from keepwell.errors import InvalidInput, StoreError
from keepwell.events import staging
from keepwell.events.store import EventStore
from tests.events.conftest import T0, make_events, read_all


def parquet_files(store: EventStore) -> list[Path]:
    return sorted(store.path.glob("*.parquet")) if store.path.exists() else []


def test_empty_store_behaves(store: EventStore) -> None:
    assert store.count() == 0
    assert store.files() == []
    assert store.version() is None
    assert not store.has_batch("anything")
    info = store.info()
    assert (info.exists, info.rows, info.files, info.first_at) == (False, 0, 0, None)
    with duckdb.connect() as con:
        store.register(con, "ev")
        assert con.execute("SELECT count(*) FROM ev").fetchone() == (0,)
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE ev)").fetchall())
    assert types == {
        "customer_id": "VARCHAR",
        "event": "VARCHAR",
        "occurred_at": "TIMESTAMP WITH TIME ZONE",
        "user_id": "VARCHAR",
        "value": "DOUBLE",
        "properties": "VARCHAR",
    }
    assert store.compact().version is None
    assert store.vacuum(retention_hours=0) == 0


def test_from_settings_uses_the_events_path(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    assert EventStore.from_settings(settings).path == settings.resolved_events_path


def test_round_trip_keeps_instants_zones_and_nulls(store: EventStore) -> None:
    berlin = timezone(timedelta(hours=1))
    data = pa.table(
        {
            "occurred_at": pa.array(
                [datetime(2026, 1, 1, 12, 30, 0, 123456, tzinfo=berlin), T0],
                pa.timestamp("ns", tz="Europe/Berlin"),
            ),
            "event": pa.array(["login", "export"], pa.large_string()),
            "customer_id": ["c1", "c2"],
            "user_id": [None, "u1"],
            "value": pa.array([7, None], pa.int32()),
            "properties": ['{"plan": "pro"}', None],
        }
    )  # other column order, other string/timestamp/number types: all accepted
    result = store.append(data)
    assert (result.rows, result.files, result.skipped) == (2, 1, False)
    assert result.version == store.version() == 1
    assert read_all(store) == [
        ("c1", "login", datetime(2026, 1, 1, 11, 30, 0, 123456, tzinfo=UTC), None, 7.0,
         '{"plan": "pro"}'),
        ("c2", "export", T0, "u1", None, None),
    ]  # fmt: skip
    # Delta readers see the same table with the documented schema
    table = DeltaTable(str(store.path)).to_pyarrow_table()
    assert table.schema == EventStore.SCHEMA
    assert table.sort_by("customer_id").column("occurred_at").to_pylist()[0] == datetime(
        2026, 1, 1, 11, 30, 0, 123456, tzinfo=UTC
    )


def test_missing_optional_columns_become_null(store: EventStore) -> None:
    data = make_events(3).select(["customer_id", "event", "occurred_at"])
    store.append(data)
    assert [r[3:] for r in read_all(store)] == [(None, None, None)] * 3


def test_a_reader_is_streamed_in_one_commit(store: EventStore) -> None:
    batches = [make_events(1000, start=i * 1000).to_batches()[0] for i in range(5)]
    reader = pa.RecordBatchReader.from_batches(EventStore.SCHEMA, iter(batches))
    result = store.append(reader)
    assert result.rows == store.count() == 5000
    assert store.version() == 1  # table creation is version 0, the append one commit


def test_big_batch_makes_several_files_in_one_commit(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events", target_file_bytes=64 * 1024)
    result = store.append(make_events(200_000))
    assert result.files > 1
    assert len(store.files()) == result.files
    assert store.count() == 200_000
    assert store.version() == 1


def test_info_reports_size_and_extent(store: EventStore) -> None:
    store.append(make_events(10))
    store.append(make_events(5, start=100))
    info = store.info()
    assert (info.exists, info.rows, info.files, info.version) == (True, 15, 2, 2)
    assert info.bytes == sum(p.stat().st_size for p in parquet_files(store))
    assert info.first_at == T0
    assert info.last_at == T0 + timedelta(minutes=104)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # an unknown column
        (lambda t: t.append_column("plan", pa.array(["x"] * t.num_rows)), "unknown column"),
        # a required column missing
        (lambda t: t.drop_columns(["event"]), "missing required column(s) ['event']"),
        # a timestamp without a zone is ambiguous
        (
            lambda t: t.set_column(
                2, "occurred_at", t.column("occurred_at").cast(pa.timestamp("us"))
            ),
            "field 'occurred_at'",
        ),
        # a number given as text
        (
            lambda t: t.set_column(4, "value", pa.array(["1"] * t.num_rows)),
            "field 'value': column has type string",
        ),
        # a null where a value is required, in row 2
        (
            lambda t: t.set_column(0, "customer_id", pa.array(["a", None, "c"])),
            "row 2, field 'customer_id'",
        ),
    ],
)
@pytest.mark.parametrize("as_reader", [False, True])
def test_schema_mismatch_is_a_clear_error_and_writes_nothing(
    store: EventStore, change, message: str, as_reader: bool
) -> None:
    store.append(make_events(2))
    data = change(make_events(3))
    if as_reader:
        data = pa.RecordBatchReader.from_batches(data.schema, iter(data.to_batches()))
    with pytest.raises(InvalidInput) as caught:
        store.append(data)
    assert message in str(caught.value)
    assert store.count() == 2
    assert len(parquet_files(store)) == 1  # nothing left behind


def test_append_rejects_other_objects(store: EventStore) -> None:
    with pytest.raises(InvalidInput, match="Table or RecordBatchReader"):
        store.append([{"customer_id": "c1"}])  # type: ignore[arg-type]


def test_batch_key_makes_an_append_idempotent(store: EventStore) -> None:
    first = store.append(make_events(4), batch_key="file-1")
    again = store.append(make_events(4), batch_key="file-1")
    other = store.append(make_events(4, start=4), batch_key="file-2")
    assert (first.skipped, again.skipped, other.skipped) == (False, True, False)
    assert again.rows == 0
    assert store.has_batch("file-1") and store.has_batch("file-2")
    assert not store.has_batch("file-3")
    assert store.count() == 8
    assert len(parquet_files(store)) == 2


def test_a_staged_batch_with_a_key_committed_meanwhile_is_dropped(store: EventStore) -> None:
    """A second store object stages a batch whose key another writer committed meanwhile: the
    commit is skipped and its staged files are removed (the lost race itself, on a stale
    snapshot, is in test_store_snapshots.py)."""
    store.append(make_events(1))
    late = EventStore(store.path)
    with late.stage() as batch, duckdb.connect() as con:
        store.append(make_events(3, start=10), batch_key="k")  # the other writer wins
        con.register("data", make_events(3, start=10))
        batch.copy(con, "SELECT * FROM data")
        result = batch.commit(batch_key="k")
    assert result.skipped
    assert store.count() == 4
    assert len(parquet_files(store)) == 2  # the loser's files are gone


def test_compaction_keeps_every_row_sorted_in_fewer_files(store: EventStore) -> None:
    for i in range(5):
        store.append(make_events(300, start=i * 300))
    before = read_all(store)
    with duckdb.connect() as old_reader:
        store.register(old_reader, "old")  # a reader of the pre-compaction snapshot
        result = store.compact()
        assert (result.files_removed, result.files_added, result.rows) == (5, 1, 1500)
        assert read_all(store) == before
        assert len(store.files()) == 1
        assert old_reader.execute("SELECT count(*) FROM old").fetchone() == (1500,)
    (compacted,) = store.files()
    table = pq.read_table(compacted)
    keys = list(
        zip(table["customer_id"].to_pylist(), table["occurred_at"].to_pylist(), strict=True)
    )
    assert keys == sorted(keys)
    assert store.compact().version is None  # nothing left to do
    assert store.count() == 1500


def test_compaction_race_changes_nothing(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        store.append(make_events(100, start=i * 100))
    real_copy = staging.StagedBatch.copy
    other = EventStore(store.path)
    raced = []

    def copy_then_race(self, *args, **kwargs):
        rows = real_copy(self, *args, **kwargs)
        if not raced:  # another compaction commits while this one is writing
            raced.append(None)
            raced[0] = other.compact()
        return rows

    monkeypatch.setattr(staging.StagedBatch, "copy", copy_then_race)
    with pytest.raises(StoreError, match="another compaction"):
        store.compact()
    assert raced[0].files_removed == 3
    assert store.count() == 300
    assert len(read_all(store)) == 300
    assert len(parquet_files(store)) == 4  # 3 replaced (kept for readers) + 1 compacted


def test_vacuum_respects_the_retention(store: EventStore) -> None:
    store.append(make_events(10))
    store.append(make_events(10, start=10))
    store.compact()
    orphan = store.path / "part-orphan-of-a-killed-append.parquet"
    shutil.copy(store.files()[0], orphan)
    assert store.vacuum() == 0  # all younger than 7 days
    assert len(parquet_files(store)) == 4
    assert store.vacuum(retention_hours=0) == 3  # the 2 replaced files and the orphan
    assert not orphan.exists()
    assert parquet_files(store) == [Path(p) for p in store.files()]
    assert store.count() == len(read_all(store)) == 20


def test_negative_retention_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidInput, match="retention"):
        store.vacuum(retention_hours=-1)
    with pytest.raises(InvalidInput, match="retention"):
        EventStore(store.path, retention_hours=-5)
