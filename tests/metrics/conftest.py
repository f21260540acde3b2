"""Metric fixtures: build :class:`Sources` from small hand-written frames on a backend.

``make_sources(frames)`` loads frames into the backend under test. The default backend is
DuckDB; the cross-backend suite parametrises it over DuckDB, PostgreSQL and PySpark.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pyarrow as pa
import pytest

from keepwell.events.store import EventStore
from keepwell.metrics.rollup import Rollup
from keepwell.metrics.sources import Sources


def ts(text: str) -> pd.Timestamp:
    """A naive UTC timestamp from ISO text."""
    return pd.Timestamp(text)


def subs(*rows: tuple) -> pd.DataFrame:
    """Subscription rows: (customer_id, started_at, ended_at|None, mrr_minor[, plan])."""
    records = []
    for row in rows:
        cid, start, end, mrr, *rest = row
        records.append(
            {
                "customer_id": cid,
                "plan": rest[0] if rest else "pro",
                "mrr_minor": mrr,
                "currency": "USD",
                "started_at": ts(start),
                "ended_at": ts(end) if end else None,
            }
        )
    return pd.DataFrame.from_records(records)


def rollup_frame(frame: pd.DataFrame, *, timezone: str, root: Path) -> pa.Table | pd.DataFrame:
    """The exact rollup of ``frame`` built the real way: event store -> :class:`Rollup`.

    An empty rollup is returned as a typed DataFrame (``Sources.from_frames`` infers the
    rollup's column types from values, and an empty Arrow table has none).
    """
    store = EventStore(root / "events")
    if len(frame):
        at = pd.to_datetime(frame["occurred_at"]).dt.tz_localize("UTC")
        table = pa.table(
            {
                "customer_id": pa.array(frame["customer_id"], pa.string()),
                "event": pa.array(frame["event"], pa.string()),
                "occurred_at": pa.array(at, pa.timestamp("us", tz="UTC")),
                "user_id": pa.array(frame["user_id"], pa.string()),
                "value": pa.array(frame["value"], pa.float64()),
            }
        )
        store.append(table)
    rollup = Rollup(root / "rollup", timezone=timezone)
    rollup.refresh(store)
    with duckdb.connect() as con:
        table = con.execute(rollup.sql()).to_arrow_table()
    if table.num_rows:
        return table
    return pd.DataFrame(
        {
            "customer_id": pd.Series(dtype="string"),
            "day": pd.Series(dtype="datetime64[us]"),
            "events": pd.Series(dtype="int64"),
            "value_sum": pd.Series(dtype="float64"),
        }
    )


@pytest.fixture
def duckdb_con():
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    yield con
    con.disconnect()


@pytest.fixture
def make_sources(duckdb_con) -> Callable[..., Sources]:
    def make(frames: dict[str, pd.DataFrame], *, timezone: str = "UTC") -> Sources:
        return Sources.from_frames(duckdb_con, frames, timezone=timezone)

    return make


@pytest.fixture(scope="session")
def pg_ibis_con(pg_database_url):
    """An Ibis PostgreSQL connection to this test session's fresh database."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_database_url)
    con = ibis.postgres.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database,
    )
    yield con
    con.disconnect()


@pytest.fixture(scope="session")
def spark_con():
    """An Ibis PySpark connection to a local Spark, bound to loopback."""
    import os

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("keepwell-tests")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.warehouse.dir", str(__import__("tempfile").mkdtemp()))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(spark)
    spark.stop()
