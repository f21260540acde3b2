"""Every registered metric gives identical results on DuckDB, PostgreSQL and PySpark.

The same small business (``tests/metrics/dataset.py``) is loaded into each backend; each metric
runs with its default parameters over a year of months, and again broken down by industry and
filtered to a tag where it supports that. DuckDB is the reference.
"""

from __future__ import annotations

import warnings
from datetime import date

import pandas as pd
import pytest

from keepwell.metrics.registry import all_metrics
from keepwell.metrics.sources import Sources
from tests.metrics.dataset import frames

START, END = date(2025, 7, 1), date(2026, 7, 1)
CATALOGUE = all_metrics()


def variants(spec) -> list[tuple[str, dict]]:
    out = [("default", {})]
    if "by" in spec.params:
        out.append(("by_industry", {"by": ["industry"]}))
    if "filters" in spec.params:
        out.append(("vip_only", {"filters": {"tag": "vip"}}))
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


def run(con, name: str, extra: dict) -> pd.DataFrame:
    if id(con) not in _LOADED:  # load the dataset once per backend connection
        _LOADED[id(con)] = Sources.from_frames(con, frames(), timezone="Europe/Berlin")
    src = _LOADED[id(con)]
    spec = CATALOGUE[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # backend drivers' own deprecation chatter
        return normalise(con.execute(spec.builder(src, **_params(spec, extra))))


@pytest.fixture(scope="module")
def reference(duckdb_session_con):
    cache: dict = {}

    def get(name: str, label: str, extra: dict) -> pd.DataFrame:
        if (name, label) not in cache:
            cache[name, label] = run(duckdb_session_con, name, extra)
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
def test_postgres_matches_duckdb(reference, pg_ibis_con, name, label, extra) -> None:
    got = run(pg_ibis_con, name, extra)
    pd.testing.assert_frame_equal(got, reference(name, label, extra), check_dtype=False, atol=1e-9)


SPARK_CASES = [c for c in CASES if c.values[1] == "default" or c.values[0] == "churn"]
"""Spark runs every metric once (its start-up and per-query overhead make each case take
seconds); breakdowns and filters are compared on PostgreSQL, and for churn on Spark too."""


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize(("name", "label", "extra"), SPARK_CASES)
def test_pyspark_matches_duckdb(reference, spark_con, name, label, extra) -> None:
    got = run(spark_con, name, extra)
    pd.testing.assert_frame_equal(got, reference(name, label, extra), check_dtype=False, atol=1e-9)
