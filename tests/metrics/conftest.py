"""Metric fixtures: build :class:`Sources` from small hand-written frames on a backend.

``make_sources(frames)`` loads frames into the backend under test. The default backend is
DuckDB; the cross-backend suite parametrises it over DuckDB, PostgreSQL and PySpark.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import pandas as pd
import pytest

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
