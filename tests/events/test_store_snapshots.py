"""EventStore's shared, incrementally refreshed snapshot: batch keys stay exact across store
objects, restarts, threads and processes; checkpoints bound the log a refresh replays."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from keepwell.events import store as store_module
from keepwell.events.store import CHECKPOINT_EVERY, EventStore, _Snapshot
from tests.events.conftest import make_events, read_all


def _checkpoints(store: EventStore) -> list[str]:
    return sorted(p.name for p in (store.path / "_delta_log").glob("*.checkpoint.parquet"))


def test_a_key_is_known_to_every_store_object_and_after_a_restart(store: EventStore) -> None:
    assert not store.append(make_events(5), batch_key="k").skipped
    other = EventStore(store.path)
    assert other.append(make_events(5), batch_key="k").skipped
    store_module._SNAPSHOTS.clear()  # what a restarted process starts with
    again = EventStore(store.path).append(make_events(5), batch_key="k")
    assert again.skipped and again.rows == 0 and again.version == 1
    assert store.count() == 5
    assert len(list(store.path.glob("*.parquet"))) == 1  # the skipped batches left no files


def test_threads_appending_one_key_write_it_once(store: EventStore) -> None:
    store.append(make_events(1))  # the table exists: the threads race on the key, not creation
    results = []
    start = threading.Barrier(4)

    def append(i: int) -> None:
        start.wait()
        results.append(EventStore(store.path).append(make_events(100, start=i), batch_key="k"))

    threads = [threading.Thread(target=append, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.skipped for r in results) == [False, True, True, True]
    assert store.count() == 101
    assert len(read_all(store)) == 101
    assert store.version() == 2


def test_a_key_another_process_committed_after_our_lookup_is_skipped(store: EventStore) -> None:
    store.append(make_events(1))
    assert not store.has_batch("k")  # remembered as absent at this version
    code = (
        "import sys; from pathlib import Path; from keepwell.events.store import EventStore; "
        "from tests.events.conftest import make_events; "
        "print(EventStore(Path(sys.argv[1])).append(make_events(7), batch_key='k').skipped)"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(store.path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        check=True,
    )
    assert child.stdout.strip() == "False"
    assert store.has_batch("k")
    assert store.append(make_events(7), batch_key="k").skipped
    assert store.count() == 8


def test_a_commit_on_a_stale_snapshot_loses_to_the_same_key(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process committed key k after this one's snapshot (and its refresh) was taken:
    Delta's conflict check refuses the second commit, which is answered skipped."""
    store.append(make_events(1))
    stale = DeltaTable(str(store.path))
    store.append(make_events(3, start=10), batch_key="k")  # "the other process"
    real_update = stale.update_incremental
    calls = []

    def update() -> None:  # the first refresh misses the other commit, as in a race
        calls.append(1)
        if len(calls) > 1:
            real_update()

    monkeypatch.setattr(stale, "update_incremental", update)
    late = EventStore(store.path)
    snap = _Snapshot(table=stale, log_id=late._log_id())
    monkeypatch.setattr(EventStore, "_snapshot", lambda self: snap)
    with late.stage() as batch, duckdb.connect() as con:
        con.register("data", make_events(3, start=10))
        batch.copy(con, "SELECT * FROM data")
        result = batch.commit(batch_key="k")
    assert result.skipped and result.rows == 0
    assert len(calls) == 2  # the commit was tried on the stale snapshot, then refreshed
    monkeypatch.undo()
    assert store.count() == 4
    assert len(list(store.path.glob("*.parquet"))) == 2  # the loser's files are gone


def test_checkpoints_are_written_every_few_versions(store: EventStore) -> None:
    for i in range(CHECKPOINT_EVERY + 2):
        store.append(make_events(3, start=3 * i), batch_key=f"b{i}")
    assert store.version() == CHECKPOINT_EVERY + 2
    assert _checkpoints(store) == [f"{CHECKPOINT_EVERY:020d}.checkpoint.parquet"]
    store_module._SNAPSHOTS.clear()
    fresh = EventStore(store.path)
    assert fresh.count() == 3 * (CHECKPOINT_EVERY + 2)
    assert fresh.has_batch("b0") and fresh.has_batch(f"b{CHECKPOINT_EVERY + 1}")
    assert not fresh.has_batch("b99")
    assert fresh.append(make_events(3), batch_key="b3").skipped


def test_a_store_made_again_at_the_same_path_forgets_the_old_keys(store: EventStore) -> None:
    store.append(make_events(2), batch_key="k")
    assert store.has_batch("k")
    shutil.rmtree(store.path)
    assert not store.has_batch("k")
    result = store.append(make_events(4), batch_key="k")
    assert not result.skipped and result.version == 1
    assert store.count() == 4
