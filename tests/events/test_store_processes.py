"""EventStore across processes: a writer killed mid-append, readers during appends."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from keepwell.events.store import EventStore
from tests.events.conftest import make_events, read_all

pytestmark = pytest.mark.slow

# Appends ``batches`` x 100k generated rows as ONE batch (a streamed reader), then prints "done".
BIG_APPEND = """
import sys
from datetime import UTC, datetime
from pathlib import Path
import pyarrow as pa
import pyarrow.compute as pc
from keepwell.events.store import EventStore

store, batches = EventStore(Path(sys.argv[1])), int(sys.argv[2])
start = pa.scalar(datetime(2026, 2, 1, tzinfo=UTC), pa.timestamp("us", tz="UTC"))

def generate():
    for b in range(batches):
        ids = pa.array(range(b * 100_000, (b + 1) * 100_000))
        yield pa.record_batch({
            "customer_id": pc.binary_join_element_wise("c", pc.cast(ids, pa.string()), ""),
            "event": pa.array(["login"] * 100_000),
            "occurred_at": pc.add(start, pc.cast(ids, pa.duration("s"))),
        })

schema = EventStore.SCHEMA.remove(5).remove(4).remove(3)
store.append(pa.RecordBatchReader.from_batches(schema, generate()))
print("done", flush=True)
"""

# Appends ``n`` batches of ``k`` rows, one commit each.
SMALL_APPENDS = """
import sys, time
from pathlib import Path
from keepwell.events.store import EventStore
from tests.events.conftest import make_events, read_all

store, n, k = EventStore(Path(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    store.append(make_events(k, start=i * k))
    time.sleep(0.02)
"""


def _spawn(code: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )


def _orphans(store: EventStore) -> set[Path]:
    committed = {Path(p) for p in store.files()}
    return {p for p in store.path.glob("*.parquet") if p not in committed}


def test_append_killed_midway_leaves_the_store_as_it_was(store: EventStore) -> None:
    store.append(make_events(1000))
    version, files, expected = store.version(), store.files(), store.count()
    landed = False
    for batches in (60, 120, 240):  # retry with a bigger batch if the writer was too quick
        child = _spawn(BIG_APPEND, store.path, batches)
        deadline = time.monotonic() + 120
        while not _orphans(store) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        if "done" not in out:  # killed before its commit
            assert child.returncode == -signal.SIGKILL, err
            landed = True
            break
        # it committed: try again on top of that
        version, files, expected = store.version(), store.files(), store.count()
    assert landed, "the writer always finished before it could be killed"
    assert _orphans(store), "the kill should have landed while a data file was being written"
    assert store.version() == version
    assert store.files() == files
    assert store.count() == expected
    with duckdb.connect() as con:
        store.register(con)
        assert con.execute("SELECT count(*) FROM events").fetchone() == (expected,)
        # no partial batch: every row belongs to an append that was committed whole
        (killed_rows,) = con.execute(
            "SELECT count(*) FROM events WHERE occurred_at >= TIMESTAMPTZ '2026-02-01'"
        ).fetchone()
    assert killed_rows % 100_000 == 0
    assert store.vacuum(retention_hours=0) >= 1
    assert not _orphans(store)
    assert store.count() == expected


def test_readers_see_whole_batches_while_another_process_appends(store: EventStore) -> None:
    n, k = 15, 2000
    child = _spawn(SMALL_APPENDS, store.path, n, k)
    counts, view_counts = [], []
    try:
        while child.poll() is None:
            counts.append(EventStore(store.path).count())
            with duckdb.connect() as con:
                EventStore(store.path).register(con)
                view_counts.append(con.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    counts.append(store.count())
    for seen in (counts, view_counts):
        assert all(c % k == 0 for c in seen), seen
        assert seen == sorted(seen), seen
    assert counts[-1] == n * k
    assert len(set(counts)) > 2, "the reader should have seen intermediate versions"


def test_two_processes_append_at_once(store: EventStore) -> None:
    n, k = 10, 500
    children = [_spawn(SMALL_APPENDS, store.path, n, k) for _ in range(2)]
    for child in children:
        _, err = child.communicate(timeout=180)
        assert child.returncode == 0, err
    assert store.count() == len(read_all(store)) == 2 * n * k
    # one commit per append; the table's creation is version 0 -- when both processes race to
    # create it, delta-rs may write the losing creation as one more (metadata-only) commit
    assert store.version() in (2 * n, 2 * n + 1)
