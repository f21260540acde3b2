"""Every registered metric gives identical results on DuckDB, PostgreSQL and PySpark.

The same small business (``tests/metrics/dataset.py``) is loaded into each backend; each metric
runs with its default parameters over a year of months, and again broken down by industry and
filtered to a tag where it supports that. Metrics that read events run once more on Sources
that also hold the daily rollup of those events (variant ``rollup``: the engagement metrics
then read :func:`~keepwell.metrics.period_activity.period_activity`). DuckDB is the reference;
on DuckDB the rollup results also equal the raw-event ones.
"""

from __future__ import annotations

import warnings
from datetime import date

import pandas as pd
import pyarrow as pa
import pytest

from keepwell.metrics.daily import reads_rollup
from keepwell.metrics.registry import all_metrics
from keepwell.metrics.sources import Sources
from tests.metrics.conftest import rollup_frame
from tests.metrics.dataset import frames

START, END = date(2025, 7, 1), date(2026, 7, 1)
TIMEZONE = "Europe/Berlin"
CATALOGUE = all_metrics()
EVENT_METRICS = [name for name, spec in CATALOGUE.items() if "events" in spec.needs]


def variants(spec) -> list[tuple[str, dict]]:
    out = [("default", {})]
    if "by" in spec.params:
        out.append(("by_industry", {"by": ["industry"]}))
    if "filters" in spec.params:
        out.append(("vip_only", {"filters": {"tag": "vip"}}))
    if "events" in spec.needs:
        out.append(("rollup", {}))  # default parameters, read from the daily rollup
    return out


CASES = [
    pytest.param(name, label, extra, id=f"{name}-{label}")
    for name, spec in CATALOGUE.items()
    for label, extra in variants(spec)
]


def _params(spec, extra: dict) -> dict:
    params = {
        k: v for k, v in {"start": START, "end": END, "period": "month"}.items() if k in spec.params
    }
    params.update(extra)
    return params


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Sort rows deterministically and give comparable dtypes across backends."""
    df = df.copy()
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            df[col] = pd.to_datetime(df[col]).dt.tz_localize(None).astype("datetime64[us]")
        elif pd.api.types.is_bool_dtype(df[col]):
            df[col] = df[col].astype(bool)
        elif pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype("float64")
        else:
            df[col] = df[col].map(
                lambda v: (
                    None
                    if v is None or (isinstance(v, float) and pd.isna(v))
                    else str(v)
                    if not hasattr(v, "isoformat")
                    else v.isoformat()
                )
            )
    keys = [c for c in df.columns if not pd.api.types.is_float_dtype(df[c])] or list(df.columns)
    return df.sort_values(
        keys + [c for c in df.columns if c not in keys], na_position="first"
    ).reset_index(drop=True)


_LOADED: dict[int, Sources] = {}
_LOADED_ROLLUP: dict[int, Sources] = {}


def sources(con, label: str, rollup: pa.Table) -> Sources:
    """The dataset on ``con``, loaded once per connection; for the ``rollup`` variant once
    more (own tables) with the daily ``rollup`` of its events, counted in the reporting zone."""
    if label != "rollup":
        if id(con) not in _LOADED:
            _LOADED[id(con)] = Sources.from_frames(con, frames(), timezone=TIMEZONE)
        return _LOADED[id(con)]
    if id(con) not in _LOADED_ROLLUP:
        data = {**frames(), "rollup": rollup}
        src = Sources.from_frames(con, data, timezone=TIMEZONE, prefix="kw_r_")
        src.extra["rollup_timezone"] = TIMEZONE
        _LOADED_ROLLUP[id(con)] = src
    return _LOADED_ROLLUP[id(con)]


def run(con, name: str, label: str, extra: dict, rollup: pa.Table) -> pd.DataFrame:
    src = sources(con, label, rollup)
    spec = CATALOGUE[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # backend drivers' own deprecation chatter
        return normalise(con.execute(spec.builder(src, **_params(spec, extra))))


@pytest.fixture(scope="module")
def rollup(tmp_path_factory) -> pa.Table:
    """The daily rollup of the dataset's events (Berlin days), built the real way."""
    root = tmp_path_factory.mktemp("cross_backend_rollup")
    return rollup_frame(frames()["events"], timezone=TIMEZONE, root=root)


@pytest.fixture(scope="module")
def reference(duckdb_session_con, rollup):
    cache: dict = {}

    def get(name: str, label: str, extra: dict) -> pd.DataFrame:
        if (name, label) not in cache:
            cache[name, label] = run(duckdb_session_con, name, label, extra, rollup)
        return cache[name, label]

    return get


@pytest.fixture(scope="module")
def duckdb_session_con():
    import ibis

    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    yield con
    con.disconnect()


@pytest.mark.parametrize(("name", "label", "extra"), CASES)
def test_reference_result_is_not_empty(reference, name, label, extra) -> None:
    assert len(reference(name, label, extra)) > 0


@pytest.mark.parametrize(("name", "label", "extra"), CASES)
def test_postgres_matches_duckdb(reference, pg_ibis_con, rollup, name, label, extra) -> None:
    got = run(pg_ibis_con, name, label, extra, rollup)
    pd.testing.assert_frame_equal(got, reference(name, label, extra), check_dtype=False, atol=1e-9)


SPARK_CASES = [c for c in CASES if c.values[1] in ("default", "rollup") or c.values[0] == "churn"]
"""Spark runs every metric once (its start-up and per-query overhead make each case take
seconds), and each event metric once more from the rollup; breakdowns and filters are compared
on PostgreSQL, and for churn on Spark too."""


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize(("name", "label", "extra"), SPARK_CASES)
def test_pyspark_matches_duckdb(reference, spark_con, rollup, name, label, extra) -> None:
    got = run(spark_con, name, label, extra, rollup)
    pd.testing.assert_frame_equal(got, reference(name, label, extra), check_dtype=False, atol=1e-9)


@pytest.mark.parametrize("name", EVENT_METRICS)
def test_duckdb_rollup_matches_raw_events(reference, duckdb_session_con, rollup, name) -> None:
    assert reads_rollup(sources(duckdb_session_con, "rollup", rollup))
    assert not sources(duckdb_session_con, "default", rollup).has_rollup
    pd.testing.assert_frame_equal(
        reference(name, "rollup", {}), reference(name, "default", {}), check_dtype=False
    )
