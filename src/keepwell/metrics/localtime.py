"""Naive-UTC timestamps -> wall-clock time and calendar day in the reporting time zone.

Ibis has no portable time-zone conversion, so this calls each backend's own function
(all of them use the IANA database, so DST is exact):

* DuckDB (ICU) and PostgreSQL: ``timezone(tz, timezone('UTC', ts))`` -- the inner call reads the
  naive value as UTC, the outer one gives the wall-clock time in ``tz``;
* Spark: ``from_utc_timestamp(ts, tz)``.

In UTC nothing is converted. An event at 2026-03-31 22:30 UTC is on 2026-04-01 in Berlin.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from keepwell.errors import InvalidInput


@ibis.udf.scalar.builtin(name="timezone")
def _timezone(zone: str, ts: dt.timestamp) -> dt.timestamp:  # DuckDB, PostgreSQL
    """Built-in ``timezone(zone, ts)``."""


@ibis.udf.scalar.builtin(name="from_utc_timestamp")
def _from_utc(ts: dt.timestamp, zone: str) -> dt.timestamp:  # Spark
    """Built-in ``from_utc_timestamp(ts, zone)``."""


def local_time(ts: ir.TimestampValue, *, tz: str, backend: str) -> ir.TimestampValue:
    """The wall-clock time in ``tz`` of the naive-UTC timestamp ``ts`` (naive result).

    ``backend`` is the Ibis backend name (``Sources.backend``).
    """
    if tz == "UTC":
        return ts
    if backend in ("duckdb", "postgres"):
        return _timezone(tz, _timezone("UTC", ts))
    if backend == "pyspark":
        return _from_utc(ts, tz)
    raise InvalidInput(
        f"no time-zone conversion for the {backend!r} backend",
        field="timezone",
        expected="UTC, or the duckdb, postgres or pyspark backend",
    )


def local_day(ts: ir.TimestampValue, *, tz: str, backend: str) -> ir.DateValue:
    """The calendar day in ``tz`` of the naive-UTC timestamp ``ts``."""
    return local_time(ts, tz=tz, backend=backend).date()
