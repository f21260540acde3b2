"""Fixtures for the event store: a fresh store per test and small event tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from keepwell.events.store import EventStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(tmp_path / "events")


def make_events(n: int, *, start: int = 0, customers: int = 7) -> pa.Table:
    """``n`` events over ``customers`` customers, one minute apart, some optional nulls."""
    idx = range(start, start + n)
    return pa.table(
        {
            "customer_id": [f"c{i % customers}" for i in idx],
            "event": ["login" if i % 3 else "report_created" for i in idx],
            "occurred_at": pa.array(
                [T0 + timedelta(minutes=i) for i in idx], pa.timestamp("us", tz="UTC")
            ),
            "user_id": [None if i % 4 == 0 else f"u{i % 11}" for i in idx],
            "value": [None if i % 5 == 0 else float(i) for i in idx],
            "properties": [None if i % 2 else f'{{"n": {i}}}' for i in idx],
        },
        schema=EventStore.SCHEMA,
    )


def read_all(store: EventStore) -> list[tuple]:
    """Every event of the store's current snapshot, sorted, through a DuckDB view."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        store.register(con)
        return con.execute("SELECT * FROM events ORDER BY ALL").fetchall()


def rows_of(table: pa.Table) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table.to_pylist())
