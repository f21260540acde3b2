"""Where metrics read from: the same named Ibis tables on any backend.

Every metric takes a :class:`Sources`. Tables and columns (timestamps are naive UTC):

``customers``      customer_id (external id), signup_at, industry, country, status, owner,
                   plus one ``attr_<name>`` text column per custom attribute
``customer_tags``  customer_id, tag
``subscriptions``  customer_id, plan, mrr_minor, currency, started_at, ended_at (null = open);
                   trial and free (MRR 0) rows are left out: a customer counts from
                   their first paid row
``invoices``       customer_id, amount_minor, currency, issued_at, due_at, paid_at, status
``orders``         customer_id, ordered_at, amount_minor, currency, category, status
``surveys``        customer_id, kind, score, responded_at
``tickets``        customer_id, priority, opened_at, closed_at
``events``         customer_id, event, occurred_at, user_id, value   (raw usage events)
``rollup``         (optional) the daily per-customer rollup of events: customer_id, day (date,
                   the local day in the reporting time zone), events (count of all events),
                   value_sum, and per event type ``n_<event>`` (count) and ``v_<event>`` (value
                   sum), where <event> is the event name lower-cased with non-alphanumerics as _

The embedded default runs on DuckDB in-process: operational tables are read from the store
(SQLite or PostgreSQL) and events are read straight from the event store's Parquet files.
:meth:`Sources.from_frames` loads the same tables into any Ibis backend (PostgreSQL, PySpark),
which is how the cross-backend tests prove every metric gives identical results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine

from keepwell.config import Settings

TS = "timestamp"

SCHEMAS: dict[str, ibis.Schema] = {
    "customers": ibis.schema(
        {
            "customer_id": "string",
            "signup_at": TS,
            "industry": "string",
            "country": "string",
            "status": "string",
            "owner": "string",
        }
    ),
    "customer_tags": ibis.schema({"customer_id": "string", "tag": "string"}),
    "subscriptions": ibis.schema(
        {
            "customer_id": "string",
            "plan": "string",
            "mrr_minor": "int64",
            "currency": "string",
            "started_at": TS,
            "ended_at": TS,
        }
    ),
    "invoices": ibis.schema(
        {
            "customer_id": "string",
            "amount_minor": "int64",
            "currency": "string",
            "issued_at": TS,
            "due_at": TS,
            "paid_at": TS,
            "status": "string",
        }
    ),
    "orders": ibis.schema(
        {
            "customer_id": "string",
            "ordered_at": TS,
            "amount_minor": "int64",
            "currency": "string",
            "category": "string",
            "status": "string",
        }
    ),
    "surveys": ibis.schema(
        {"customer_id": "string", "kind": "string", "score": "int64", "responded_at": TS}
    ),
    "tickets": ibis.schema(
        {"customer_id": "string", "priority": "string", "opened_at": TS, "closed_at": TS}
    ),
    "events": ibis.schema(
        {
            "customer_id": "string",
            "event": "string",
            "occurred_at": TS,
            "user_id": "string",
            "value": "float64",
        }
    ),
}


@dataclass
class Sources:
    """The tables metrics read, bound to one Ibis backend connection."""

    con: Any
    tables: dict[str, ir.Table]
    timezone: str = "UTC"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_rollup(self) -> bool:
        """Whether a daily rollup is available (metrics fall back to raw events otherwise)."""
        return "rollup" in self.tables

    def __getattr__(self, name: str) -> ir.Table:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    @property
    def backend(self) -> str:
        """Name of the Ibis backend: 'duckdb', 'postgres' or 'pyspark'."""
        return self.con.name

    @classmethod
    def from_frames(
        cls,
        con: Any,
        frames: Mapping[str, pd.DataFrame | pa.Table],
        *,
        timezone: str = "UTC",
        prefix: str = "kw_",
    ) -> Sources:
        """Load frames (missing ones empty) into ``con`` as tables and bind them.

        Timestamps must be naive UTC. Used for PostgreSQL and PySpark, and by tests.
        """
        tables = {}
        for name, schema in SCHEMAS.items():
            frame = frames.get(name)
            if frame is None:
                df = pd.DataFrame({c: pd.Series(dtype=_pd_dtype(t)) for c, t in schema.items()})
            else:
                df = _conform(frame, schema)
            full = _schema_for(df, schema)
            tables[name] = con.create_table(
                f"{prefix}{name}", ibis.memtable(df, schema=full), overwrite=True
            )
        rollup = frames.get("rollup")
        if rollup is not None:
            # Arrow keeps the column types even when the rollup is empty.
            arrow = rollup if isinstance(rollup, pa.Table) else pa.Table.from_pandas(rollup)
            tables["rollup"] = con.create_table(
                f"{prefix}rollup", ibis.memtable(arrow), overwrite=True
            )
        return cls(con=con, tables=tables, timezone=timezone)

    @classmethod
    def from_parquet(cls, con: Any, paths: Mapping[str, Path], *, timezone: str = "UTC") -> Sources:
        """Bind DuckDB tables loaded from an operational snapshot's Parquet files (in the shape
        of :data:`SCHEMAS`, see :mod:`keepwell.metrics.operational`)."""
        tables = {}
        for name in SCHEMAS:
            if name == "events":
                continue
            source = _parquet_sql(paths[name])
            con.con.execute(f"CREATE OR REPLACE TEMP VIEW kw_{name} AS SELECT * FROM {source}")
            tables[name] = con.table(f"kw_{name}")
        return cls(con=con, tables=tables, timezone=timezone)


def _parquet_sql(path: Path) -> str:
    return "read_parquet('" + str(path).replace("'", "''") + "')"


def _pd_dtype(dtype: Any) -> str:
    if dtype.is_timestamp():
        return "datetime64[us]"
    if dtype.is_int64():
        return "Int64"
    if dtype.is_float64():
        return "float64"
    return "object"


def _schema_for(df: pd.DataFrame, base: ibis.Schema) -> ibis.Schema:
    """``base`` plus any extra (``attr_*``) string columns present in ``df``."""
    extra = {c: "string" for c in df.columns if c not in base}
    return ibis.schema({**dict(base.items()), **extra})


def _conform(frame: pd.DataFrame | pa.Table, schema: ibis.Schema) -> pd.DataFrame:
    df = frame.to_pandas() if isinstance(frame, pa.Table) else frame.copy()
    for col, dtype in schema.items():
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), dtype=_pd_dtype(dtype))
        elif dtype.is_timestamp():
            values = pd.to_datetime(df[col], utc=True)
            df[col] = values.dt.tz_localize(None).astype("datetime64[us]")
        elif dtype.is_int64():
            df[col] = df[col].astype("Int64")
        elif dtype.is_float64():
            df[col] = df[col].astype("float64")
    extras = [c for c in df.columns if c not in schema]
    for col in extras:
        df[col] = df[col].astype("object").where(df[col].notna(), None)
        df[col] = df[col].map(lambda v: None if v is None else str(v))
    return df[list(schema) + extras]


def read_operational(engine: Engine) -> dict[str, pd.DataFrame]:
    """Read the operational tables metrics need, keyed by customer external id.

    Custom attributes become ``attr_<name>`` text columns of ``customers``.
    """
    from keepwell.metrics.operational import read_tables

    with engine.connect() as conn:
        tables = read_tables(conn)
    return {name: table.to_pandas() for name, table in tables.items()}


def open_default(
    settings: Settings, *, engine: Engine | None = None, refresh_rollup: bool = True
) -> Sources:
    """DuckDB in-process over the operational store and the event store of ``settings``.

    The daily rollup is first brought up to date with the event store (cost proportional to
    events appended since its last refresh) and attached as ``rollup``.
    """
    from keepwell.db import engine_from_settings, require_schema
    from keepwell.events.store import EventStore
    from keepwell.metrics.operational import OperationalSnapshot

    own = engine is None
    engine = engine or engine_from_settings(settings)
    try:
        require_schema(engine)
        with engine.connect() as conn:
            paths = OperationalSnapshot(settings.home.resolve() / "cache" / "operational").paths(
                conn
            )
    finally:
        if own:
            engine.dispose()
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    sources = Sources.from_parquet(con, paths, timezone=settings.reporting_timezone)
    raw = con.con  # the DuckDB connection behind Ibis
    store = EventStore.from_settings(settings)
    store.register(raw, "kw_events_raw")
    raw.execute(
        "CREATE OR REPLACE TEMP VIEW kw_events_utc AS SELECT customer_id, event, "
        "CAST(occurred_at AT TIME ZONE 'UTC' AS TIMESTAMP) AS occurred_at, user_id, value "
        "FROM kw_events_raw"
    )
    sources.tables["events"] = con.table("kw_events_utc")
    if refresh_rollup:
        from keepwell.metrics.rollup import Rollup

        rollup = Rollup.from_settings(settings)
        rollup.refresh(store)
        if rollup.files():
            rollup.attach(sources)
    return sources
