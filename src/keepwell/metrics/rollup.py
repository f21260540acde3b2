"""The daily per-customer event rollup: one row per customer and local day, kept incrementally.

Metrics that only need "how much did this customer do on this (local) day" read this instead
of rescanning raw events. Columns (the shape of ``Sources.tables["rollup"]``):

==============  =========  ======================================================================
customer_id     string     the customer's external id
day             date       the local calendar day in the rollup's time zone
events          int64      number of events (duplicates included)
value_sum       float64    sum of ``value`` (null values add nothing)
n_<type>        int64      events of that type (0 when none)
v_<type>        float64    sum of their ``value``
==============  =========  ======================================================================

``<type>`` is the event name lower-cased with every character outside ``a-z0-9`` replaced by
``_`` (:func:`keepwell.metrics.daily.event_slug`). Names that collide after this ("Page View",
"page-view") are *one* event type: their counts add up in the same column -- on the raw-event
path too, so metrics agree. Events before signup and duplicate events are kept as they are.

Storage (``settings.home / "rollup"``): a Delta Lake table (``deltalake``), like the event store.
Every change is one atomic commit, so a reader never sees half of one. Files:

* ``partial-*.parquet`` -- partial aggregates appended by :meth:`Rollup.refresh`; a customer-day
  may appear in several (late events for an already rolled-up day just add another partial row);
* ``compacted-*.parquet`` -- written by :meth:`Rollup.compact` and :meth:`Rollup.rebuild`: one
  row per customer-day, sorted by (customer_id, day) for per-customer scans. A rebuild works
  through consecutive customer-id ranges of about ``chunk_events`` events each (bounds from
  the distinct ids' quantiles), one sorted file set per range, so its memory stays bounded
  whatever the store's size (12M events: peak 3.2 GB in one pass -> 1.7 GB, and 20% less CPU).

Readers re-aggregate (sum by customer_id, day): :meth:`Rollup.register` creates that view in
DuckDB, so results are exact before consolidation. DuckDB (and Spark) read the Parquet files
listed by :meth:`Rollup.files`; files written before an event type existed lack its columns and
read as 0.

**Incremental refresh.** The rollup records, in the same commit as the data, which event-store
version it covers (a Delta application transaction ``keepwell.rollup.events``). A refresh reads
the event store's transaction log for the newer commits, aggregates only the files those
commits *added* with ``dataChange=true`` (appends; compaction rewrites have ``dataChange=false``
and are skipped), and appends the partial aggregates: cost proportional to the new data. A new
event type adds columns first (older rows read 0). Two refreshes racing are detected by Delta's
conflict check on that transaction; the loser changes nothing.

A full rebuild is only done by :meth:`Rollup.rebuild`, or by ``refresh`` when incremental
catch-up is impossible (no rollup yet, the time zone or the event store itself changed, events
were deleted, or the store's log no longer holds the needed commits); the result says so
(``mode="rebuild"`` and ``reason``).
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Field, Transaction
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, RemoveAction

from keepwell.config import Settings
from keepwell.errors import InvalidInput, StoreError
from keepwell.events.store import EventStore
from keepwell.metrics.daily import COUNT_PREFIX, VALUE_PREFIX
from keepwell.metrics.params import check_whole
from keepwell.metrics.rollup_months import MonthSummaries
from keepwell.metrics.tz_offsets import local_day_sql

__all__ = ["BASE_COLUMNS", "RefreshResult", "Rollup", "RollupInfo"]

EVENTS_APP_ID = "keepwell.rollup.events"
"""Delta application transaction: its version is the event-store version rolled up so far."""
COMPACTION_APP_ID = "keepwell.rollup.compaction"
TZ_KEY = "keepwell.rollup.timezone"
STORE_KEY = "keepwell.rollup.store_id"
SCRATCH_DIR = "_keepwell"

BASE_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string()),
        pa.field("day", pa.date32()),
        pa.field("events", pa.int64()),
        pa.field("value_sum", pa.float64()),
    ]
)
BASE_COLUMNS: tuple[str, ...] = tuple(BASE_SCHEMA.names)

SLUG_SQL = "regexp_replace(lower(event), '[^a-z0-9]', '_', 'g')"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _list(items: list[str]) -> str:
    return "[" + ", ".join(_lit(i) for i in items) + "]"


@dataclass(frozen=True)
class RefreshResult:
    """What one :meth:`Rollup.refresh` (or :meth:`Rollup.rebuild`) did.

    ``mode``: ``current`` (nothing new), ``incremental`` or ``rebuild``. ``files_read`` are the
    event-store files aggregated (only the new ones for an incremental refresh).
    """

    mode: str
    from_version: int | None
    to_version: int | None
    files_read: list[str] = field(default_factory=list)
    events_read: int = 0
    rows_written: int = 0
    new_event_types: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass(frozen=True)
class RollupInfo:
    """Size and state of the rollup's current snapshot."""

    path: Path
    exists: bool
    timezone: str | None
    store_version: int | None
    rows: int
    files: int
    partial_files: int
    event_types: list[str]


@dataclass(frozen=True)
class _Written:
    path: Path
    rows: int
    size: int


class Rollup:
    """The daily per-customer rollup of an event store (see the module docstring).

    Args:
        path: the rollup table's directory.
        timezone: IANA zone whose calendar days the rollup counts (the reporting zone).
        retention_hours: how long files replaced by compaction stay for running readers.
        target_file_bytes: approximate size at which Parquet files are cut.
        memory_limit: DuckDB's memory limit while building (it spills to a scratch directory
            next to the table beyond that).
        chunk_events: a rebuild aggregates about this many events at a time, one range of
            customer ids after another (each range's rows sorted and written in turn, so the
            files stay sorted by customer overall and memory stays bounded at any size).
    """

    def __init__(
        self,
        path: Path,
        *,
        timezone: str = "UTC",
        retention_hours: int = 168,
        target_file_bytes: int = 256 * 1024 * 1024,
        memory_limit: str = "3GB",
        chunk_events: int = 5_000_000,
    ) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(
                f"unknown time zone {timezone!r}", field="timezone", expected="an IANA name"
            ) from exc
        check_whole(chunk_events, "chunk_events")
        self.path = Path(path).resolve()
        self.timezone = timezone
        self.retention_hours = retention_hours
        self.target_file_bytes = target_file_bytes
        self.memory_limit = memory_limit
        self.chunk_events = chunk_events
        self.months = MonthSummaries(self.path)

    @classmethod
    def from_settings(cls, settings: Settings) -> Rollup:
        """The rollup at ``settings.home / "rollup"`` in the reporting time zone."""
        return cls(settings.home / "rollup", timezone=settings.reporting_timezone)

    def __repr__(self) -> str:
        return f"Rollup({str(self.path)!r}, timezone={self.timezone!r})"

    # -- table access --------------------------------------------------------------------------

    def _table(self) -> DeltaTable | None:
        try:
            if not DeltaTable.is_deltatable(str(self.path)):
                return None
            return DeltaTable(str(self.path))
        except DeltaError as exc:
            raise StoreError(f"cannot read the rollup at {self.path}: {exc}") from exc

    def _paths(self, table: DeltaTable) -> list[str]:
        return [unquote(u.removeprefix("file://")) for u in table.file_uris()]

    def files(self) -> list[str]:
        """Absolute paths of the Parquet files of the current snapshot (for DuckDB or Spark)."""
        table = self._table()
        return [] if table is None else self._paths(table)

    def one_row_per_day(self) -> bool:
        """Whether every (customer, day) is a single row of the current snapshot.

        Rows are unique within one write (a rebuild, a compaction or one refresh aggregates by
        customer and day). Two writes can only share a customer-day when both their day
        ranges and their customer-id ranges overlap (Parquet min/max statistics); a daily
        append of new days after a rebuild keeps the rollup one row per customer-day.
        """
        table = self._table()
        if table is None:
            return True
        ranges: dict[str, list[Any]] = {}
        for path in self._paths(table):
            name = Path(path).name
            write = name.split("-", 2)[1] if name.count("-") >= 2 else name
            meta = pq.read_metadata(path)
            cols = meta.schema.names
            for i in range(meta.num_row_groups):
                rg = meta.row_group(i)
                stats = [rg.column(cols.index(c)).statistics for c in ("customer_id", "day")]
                if rg.num_rows == 0:
                    continue
                if any(st is None or not st.has_min_max for st in stats):
                    return False
                lo = [stats[0].min, stats[1].min]
                hi = [stats[0].max, stats[1].max]
                if write in ranges:
                    r = ranges[write]
                    r[0] = [min(a, b) for a, b in zip(r[0], lo, strict=True)]
                    r[1] = [max(a, b) for a, b in zip(r[1], hi, strict=True)]
                else:
                    ranges[write] = [lo, hi]
        spans = list(ranges.values())
        for i, (lo_a, hi_a) in enumerate(spans):
            for lo_b, hi_b in spans[i + 1 :]:
                if all(lo_a[k] <= hi_b[k] and lo_b[k] <= hi_a[k] for k in (0, 1)):
                    return False
        return True

    def store_version(self) -> int | None:
        """The event-store version the rollup covers (None: never built)."""
        table = self._table()
        return None if table is None else table.transaction_version(EVENTS_APP_ID)

    def event_types(self) -> list[str]:
        """Event types with a column in the rollup, sorted."""
        table = self._table()
        if table is None:
            return []
        names = table.schema().to_arrow().names
        return sorted(n[len(COUNT_PREFIX) :] for n in names if n.startswith(COUNT_PREFIX))

    def info(self) -> RollupInfo:
        """Rows, files and coverage of the current snapshot (from the log: no data is read)."""
        table = self._table()
        if table is None:
            return RollupInfo(self.path, False, None, None, 0, 0, 0, [])
        paths = self._paths(table)
        return RollupInfo(
            path=self.path,
            exists=True,
            timezone=table.metadata().configuration.get(TZ_KEY),
            store_version=table.transaction_version(EVENTS_APP_ID),
            rows=int(table.count()),
            files=len(paths),
            partial_files=sum(Path(p).name.startswith("partial-") for p in paths),
            event_types=self.event_types(),
        )

    # -- reading -------------------------------------------------------------------------------

    def _select(self, table: DeltaTable | None, *, exact: bool) -> str:
        """SQL over the snapshot: every column of the schema, missing ones as 0.

        ``exact``: compacted rows are one per customer-day already, so only the customer-days
        that also have partial rows are re-aggregated (the rest pass through untouched).
        """
        types = [] if table is None else self._schema_types(table)
        paths = [] if table is None else self._paths(table)
        if not paths:
            return self._empty_select(types)
        names = ["events", "value_sum"] + [
            p + t for t in types for p in (COUNT_PREFIX, VALUE_PREFIX)
        ]

        def kind(name: str) -> str:
            return "DOUBLE" if name == "value_sum" or name.startswith(VALUE_PREFIX) else "BIGINT"

        def projection(files: list[str]) -> str:
            source = f"read_parquet({_list(files)}, union_by_name = true)"
            with duckdb.connect() as con:
                present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            cols = ["customer_id", "day"] + [
                f"CAST(coalesce({_ident(n)}, 0) AS {kind(n)}) AS {_ident(n)}"
                if n in present
                else f"CAST(0 AS {kind(n)}) AS {_ident(n)}"
                for n in names
            ]
            return f"SELECT {', '.join(cols)} FROM {source}"

        partial = [p for p in paths if Path(p).name.startswith("partial-")]
        compacted = [p for p in paths if p not in partial]
        if not exact or not partial:
            return projection(paths)
        sums = ", ".join(f"CAST(sum({_ident(n)}) AS {kind(n)}) AS {_ident(n)}" for n in names)
        regroup = "SELECT customer_id, day, {sums} FROM ({rows}) GROUP BY customer_id, day"
        if not compacted:
            return regroup.format(sums=sums, rows=projection(partial))
        return (
            f"WITH kw_c AS NOT MATERIALIZED ({projection(compacted)}), "
            f"kw_p AS NOT MATERIALIZED ({projection(partial)}), "
            "kw_k AS (SELECT DISTINCT customer_id, day FROM kw_p) "
            "SELECT * FROM kw_c ANTI JOIN kw_k USING (customer_id, day) UNION ALL "
            + regroup.format(
                sums=sums,
                rows="SELECT kw_c.* FROM kw_c SEMI JOIN kw_k USING (customer_id, day) "
                "UNION ALL SELECT * FROM kw_p",
            )
        )

    @staticmethod
    def _schema_types(table: DeltaTable) -> list[str]:
        names = table.schema().to_arrow().names
        return sorted(n[len(COUNT_PREFIX) :] for n in names if n.startswith(COUNT_PREFIX))

    @staticmethod
    def _empty_select(types: list[str]) -> str:
        cols = [
            "CAST(NULL AS VARCHAR) AS customer_id",
            "CAST(NULL AS DATE) AS day",
            "CAST(NULL AS BIGINT) AS events",
            "CAST(NULL AS DOUBLE) AS value_sum",
        ]
        for t in types:
            cols.append(f"CAST(NULL AS BIGINT) AS {_ident(COUNT_PREFIX + t)}")
            cols.append(f"CAST(NULL AS DOUBLE) AS {_ident(VALUE_PREFIX + t)}")
        return f"SELECT {', '.join(cols)} WHERE false"

    def sql(self, *, exact: bool = True) -> str:
        """A DuckDB query over the current snapshot.

        ``exact=True`` sums partial rows: one row per (customer_id, day). ``exact=False`` lists
        the stored rows as they are (a customer-day may repeat until :meth:`compact`); sums and
        distinct-day counts over it are still exact, and it skips the re-aggregation.
        """
        return self._select(self._table(), exact=exact)

    def register(
        self, con: duckdb.DuckDBPyConnection, name: str = "kw_rollup", *, exact: bool = True
    ) -> None:
        """Create (or replace) a temporary DuckDB view ``name`` over the current snapshot.

        Pinned to this snapshot's files (call again after a refresh); see :meth:`sql`.
        """
        con.execute(f"CREATE OR REPLACE TEMP VIEW {_ident(name)} AS {self.sql(exact=exact)}")

    def attach(self, src: Any, *, name: str = "kw_rollup", exact: bool = False) -> None:
        """Register the rollup on a DuckDB-backed :class:`~keepwell.metrics.sources.Sources`
        as ``src.tables["rollup"]`` (and its zone as ``src.extra["rollup_timezone"]``;
        ``src.extra["rollup_one_row_per_day"]`` says whether each customer-day is one row, which
        holds after a rebuild or compaction, and after appends of new days: see
        :meth:`one_row_per_day`).

        By default the stored rows are listed as they are (``exact=False``): every metric
        aggregates the rollup with sums and distinct-day counts, which are exact over partial
        rows, and skipping the re-aggregation saves a pass over the table on every read.
        """
        if src.backend != "duckdb":
            raise InvalidInput(
                f"the rollup attaches to DuckDB sources, not {src.backend!r}",
                field="backend",
                expected="duckdb (pass the rollup as a frame to other backends)",
            )
        self.register(src.con.con, name, exact=exact)
        src.tables["rollup"] = src.con.table(name)
        # tables shared by metrics were built from what was attached before (a view of the
        # same name and columns looks the same to their key): build them anew
        src.extra.pop("shared_tables", None)
        months = self.months.current(self.files())
        if months:
            src.con.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {_ident(name + '_months')} AS SELECT * FROM "
                f"read_parquet({_list(months)}, union_by_name = true)"
            )
            src.tables["rollup_months"] = src.con.table(name + "_months")
        else:
            src.tables.pop("rollup_months", None)
        src.extra["rollup_timezone"] = self.timezone
        src.extra["rollup_one_row_per_day"] = exact or self.one_row_per_day()

    # -- building ------------------------------------------------------------------------------

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        path = self.path / SCRATCH_DIR / f"tmp-{uuid.uuid4().hex}"
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def _connect(self, scratch: Path) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(
            config={
                "temp_directory": str(scratch),
                "memory_limit": self.memory_limit,
                "preserve_insertion_order": False,
            }
        )
        con.execute("SET TimeZone = 'UTC'")
        return con

    def _aggregate(
        self,
        con: duckdb.DuckDBPyConnection,
        files: list[str],
        customers: tuple[str | None, str | None] = (None, None),
    ) -> tuple[int, list[str]]:
        """Aggregate ``files`` into the temp table ``kw_raw`` (customer_id, day, event, n, v)
        and the view ``kw_agg`` (the same with the event type); return the event count and the
        event types seen. Names become types on the aggregate, not on every event.
        ``customers`` = (lowest, end) limits it to customer ids in [lowest, end) (None: open)."""
        source = f"read_parquet({_list(files)})"
        lo, hi = customers
        where = [f"customer_id >= {_lit(lo)}"] if lo is not None else []
        where += [f"customer_id < {_lit(hi)}"] if hi is not None else []
        con.execute(
            "CREATE OR REPLACE TEMP TABLE kw_raw AS "
            f"SELECT customer_id, {self._day_sql()} AS day, event,"
            " count(*) AS n, sum(value) AS v "
            f"FROM {source} {'WHERE ' + ' AND '.join(where) if where else ''} GROUP BY ALL"
        )
        con.execute(
            "CREATE OR REPLACE TEMP VIEW kw_agg AS "
            f"SELECT customer_id, day, {SLUG_SQL} AS type, n, v FROM kw_raw"
        )
        (events,) = con.execute("SELECT coalesce(sum(n), 0) FROM kw_raw").fetchone()
        types = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {SLUG_SQL} FROM (SELECT DISTINCT event FROM kw_raw) ORDER BY 1"
            ).fetchall()
        ]
        return int(events), types

    def _day_sql(self) -> str:
        """The local calendar day of ``occurred_at`` (TIMESTAMPTZ): ICU's answer, computed from
        the zone's offset transitions (:mod:`keepwell.metrics.tz_offsets`, ~11x faster)."""
        return local_day_sql(self.timezone, "occurred_at")

    @staticmethod
    def _pivot_sql(types: list[str], *, order: bool) -> str:
        cols = [
            "customer_id",
            "day",
            "CAST(sum(n) AS BIGINT) AS events",
            "CAST(coalesce(sum(v), 0) AS DOUBLE) AS value_sum",
        ]
        for t in types:
            cols.append(
                f"CAST(coalesce(sum(n) FILTER (WHERE type = {_lit(t)}), 0) AS BIGINT) "
                f"AS {_ident(COUNT_PREFIX + t)}"
            )
            cols.append(
                f"CAST(coalesce(sum(v) FILTER (WHERE type = {_lit(t)}), 0) AS DOUBLE) "
                f"AS {_ident(VALUE_PREFIX + t)}"
            )
        tail = " ORDER BY customer_id, day" if order else ""
        return f"SELECT {', '.join(cols)} FROM kw_agg GROUP BY customer_id, day{tail}"

    def _copy(
        self,
        con: duckdb.DuckDBPyConnection,
        query: str,
        prefix: str,
        write_id: str | None = None,
    ) -> list[_Written]:
        """Write ``query`` as Parquet files into the table directory (not yet committed).
        Files named with one ``write_id`` count as one write (see :meth:`one_row_per_day`)."""
        pattern = f"{prefix}-{write_id or uuid.uuid4().hex[:16]}-{uuid.uuid4().hex[:8]}-{{uuid}}"
        try:
            rows = con.execute(
                f"COPY ({query}) TO {_lit(str(self.path))} (FORMAT parquet, COMPRESSION zstd, "
                f"FILE_SIZE_BYTES {self.target_file_bytes}, FILENAME_PATTERN {_lit(pattern)}, "
                "RETURN_STATS, APPEND)"
            ).fetchall()
        except BaseException:
            for p in self.path.glob(pattern.replace("{uuid}", "*") + ".parquet"):
                p.unlink(missing_ok=True)
            raise
        out = []
        for filename, count, size, *_ in rows:
            path = Path(filename)
            if not count:
                path.unlink(missing_ok=True)
                continue
            out.append(_Written(path, int(count), int(size)))
        return out

    @staticmethod
    def _adds(files: list[_Written], *, data_change: bool) -> list[AddAction]:
        return [
            AddAction(
                path=f.path.name,
                size=f.size,
                partition_values={},
                modification_time=int(f.path.stat().st_mtime * 1000),
                data_change=data_change,
                stats=json.dumps({"numRecords": f.rows}),
            )
            for f in files
        ]

    def _ensure(self, store_id: str | None) -> DeltaTable:
        """The rollup table for this zone and event store, (re)created when either differs."""
        table = self._table()
        if table is not None:
            conf = table.metadata().configuration
            if conf.get(TZ_KEY) == self.timezone and conf.get(STORE_KEY) == (store_id or ""):
                return table
            # another zone or another event store: the old rollup is of no use (the only
            # non-atomic step; a crash here leaves no rollup, and the next refresh rebuilds)
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        return DeltaTable.create(
            str(self.path),
            schema=BASE_SCHEMA,
            mode="ignore",
            name="keepwell_rollup",
            description="keepwell daily per-customer event rollup",
            configuration={TZ_KEY: self.timezone, STORE_KEY: store_id or ""},
            raise_if_key_not_exists=False,
        )

    def _add_types(self, table: DeltaTable, types: list[str]) -> list[str]:
        """Add columns for event types the table does not have yet; return the new types."""
        have = set(table.schema().to_arrow().names)
        new = [t for t in types if COUNT_PREFIX + t not in have]
        if new:
            fields = []
            for t in new:
                fields.append(Field(COUNT_PREFIX + t, "long", nullable=True))
                fields.append(Field(VALUE_PREFIX + t, "double", nullable=True))
            table.alter.add_columns(fields)
            table.update_incremental()
        return new

    def _commit(
        self,
        table: DeltaTable,
        actions: list[AddAction | RemoveAction],
        *,
        mode: str,
        store_version: int | None,
        operation: str,
        app: tuple[str, int] | None = None,
    ) -> None:
        txns = []
        if store_version is not None:
            txns.append(Transaction(EVENTS_APP_ID, store_version))
        if app is not None:
            txns.append(Transaction(*app))
        try:
            table.create_write_transaction(
                actions,
                mode=mode,
                schema=table.schema(),
                commit_properties=CommitProperties(
                    app_transactions=txns or None,
                    custom_metadata={"keepwell.operation": operation},
                ),
            )
        except CommitFailedError as exc:
            raise StoreError(
                f"another rollup {operation} of {self.path} committed first; nothing was changed",
                hint="run it again",
            ) from exc
        except DeltaError as exc:
            raise StoreError(f"cannot commit the rollup {operation}: {exc}") from exc

    def _commit_written(
        self, table: DeltaTable, written: list[_Written], *, mode: str, **kwargs: Any
    ) -> None:
        """Commit ``written`` as new data; if the commit fails, delete the files."""
        try:
            self._commit(table, self._adds(written, data_change=True), mode=mode, **kwargs)
        except StoreError:
            for w in written:
                w.path.unlink(missing_ok=True)
            raise

    def rebuild(self, store: EventStore, *, reason: str = "rebuild requested") -> RefreshResult:
        """Build the rollup from every file of the event store's current snapshot (one commit
        replacing the whole rollup, compacted and sorted by customer)."""
        events_table = _store_table(store)
        store_id = None if events_table is None else events_table.metadata().id
        table = self._ensure(store_id)
        before = table.transaction_version(EVENTS_APP_ID)
        if events_table is None:
            return RefreshResult("current", before, None, reason="the event store is empty")
        version = events_table.version()
        files = [unquote(u.removeprefix("file://")) for u in events_table.file_uris()]
        events, new, written = 0, [], []
        if files:
            with self._scratch() as scratch:
                con = self._connect(scratch)
                try:
                    events, new, written = self._build(con, table, files)
                finally:
                    con.close()
        self._commit_written(
            table, written, mode="overwrite", store_version=version, operation="rebuild"
        )
        self.update_months()
        return RefreshResult(
            mode="rebuild",
            from_version=before,
            to_version=version,
            files_read=files,
            events_read=events,
            rows_written=sum(w.rows for w in written),
            new_event_types=new,
            reason=reason,
        )

    def _customer_ranges(
        self, con: duckdb.DuckDBPyConnection, files: list[str]
    ) -> list[tuple[str | None, str | None]]:
        """Consecutive customer-id ranges [lowest, end) of about :attr:`chunk_events` events
        each (equal numbers of customers; one open range when the files are small)."""
        rows = sum(pq.read_metadata(f).num_rows for f in files)
        k = -(-rows // self.chunk_events)
        if k <= 1:
            return [(None, None)]
        qs = ", ".join(str(i / k) for i in range(1, k))
        (bounds,) = con.execute(
            f"SELECT quantile_disc(customer_id, [{qs}]) FROM "
            f"(SELECT DISTINCT customer_id FROM read_parquet({_list(files)}))"
        ).fetchone()
        edges = [None, *sorted(set(bounds or [])), None]
        return list(itertools.pairwise(edges))

    def _build(
        self, con: duckdb.DuckDBPyConnection, table: DeltaTable, files: list[str]
    ) -> tuple[int, list[str], list[_Written]]:
        """Aggregate ``files`` range by range of customer ids into sorted Parquet files of one
        write; return (events read, new event types, files written)."""
        types = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {SLUG_SQL} FROM "
                f"(SELECT DISTINCT event FROM read_parquet({_list(files)})) ORDER BY 1"
            ).fetchall()
        ]
        new = self._add_types(table, types)
        write_id, events, written = uuid.uuid4().hex[:16], 0, []
        try:
            for customers in self._customer_ranges(con, files):
                n, _ = self._aggregate(con, files, customers)
                events += n
                pivot = self._pivot_sql(types, order=True)
                written += self._copy(con, pivot, "compacted", write_id)
        except BaseException:
            for w in written:
                w.path.unlink(missing_ok=True)
            raise
        return events, new, written

    def _new_files(self, store: EventStore, first: int, last: int) -> list[str] | str:
        """Files added (dataChange=true) by event-store commits ``first..last``, or the reason
        they cannot be known."""
        log = store.path / "_delta_log"
        files: list[str] = []
        for version in range(first, last + 1):
            entry = log / f"{version:020d}.json"
            if not entry.exists():
                return f"the event store's log no longer holds commit {version}"
            for line in entry.read_text().splitlines():
                if not line.strip():
                    continue
                action = json.loads(line)
                if "add" in action and action["add"].get("dataChange", True):
                    files.append(str(store.path / unquote(action["add"]["path"])))
                elif "remove" in action and action["remove"].get("dataChange", True):
                    return f"event-store commit {version} deleted events"
        return files

    def refresh(self, store: EventStore) -> RefreshResult:
        """Bring the rollup up to date with ``store``, aggregating only newly added files.

        See the module docstring; ``result.files_read`` lists the files aggregated. The month
        summaries (:meth:`update_months`) follow.
        """
        result = self._refresh(store)
        self.update_months()
        return result

    def _refresh(self, store: EventStore) -> RefreshResult:
        events_table = _store_table(store)
        if events_table is None:
            return RefreshResult("current", self.store_version(), None)
        table = self._table()
        done = None if table is None else table.transaction_version(EVENTS_APP_ID)
        if table is None or done is None:
            return self.rebuild(store, reason="no rollup yet")
        conf = table.metadata().configuration
        if conf.get(TZ_KEY) != self.timezone:
            return self.rebuild(store, reason=f"the time zone changed from {conf.get(TZ_KEY)}")
        if conf.get(STORE_KEY) != events_table.metadata().id:
            return self.rebuild(store, reason="the event store was replaced")
        version = events_table.version()
        if done == version:
            return RefreshResult("current", done, version)
        if done > version:
            return self.rebuild(store, reason="the event store is older than the rollup")
        found = self._new_files(store, done + 1, version)
        if isinstance(found, str):
            return self.rebuild(store, reason=found)
        written: list[_Written] = []
        events, new = 0, []
        if found:
            with self._scratch() as scratch:
                con = self._connect(scratch)
                try:
                    events, types = self._aggregate(con, found)
                    new = self._add_types(table, types)
                    written = self._copy(con, self._pivot_sql(types, order=False), "partial")
                finally:
                    con.close()
        self._commit_written(
            table, written, mode="append", store_version=version, operation="refresh"
        )
        return RefreshResult(
            mode="incremental",
            from_version=done,
            to_version=version,
            files_read=found,
            events_read=events,
            rows_written=sum(w.rows for w in written),
            new_event_types=new,
        )

    def compact(self) -> int:
        """Consolidate partial rows into one row per customer-day, sorted by customer.

        One commit replaces the files it read (later refreshes are kept); replaced files stay
        for ``retention_hours`` for running readers, then :meth:`vacuum` deletes them.
        Returns the number of rows written (0: nothing to do).
        """
        rows = self._compact()
        if rows:
            self.update_months()
        return rows

    def update_months(self) -> list[date]:
        """Bring the month summaries (:mod:`keepwell.metrics.rollup_months`) up to date with
        the current snapshot: only months whose daily files changed are rebuilt. Returns them."""
        files = self.files()
        return self.months.update(
            files, one_row_per_day=self.one_row_per_day, memory_limit=self.memory_limit
        )

    def _compact(self) -> int:
        table = self._table()
        if table is None:
            return 0
        actions = pa.table(table.get_add_actions(flatten=True)).select(["path", "size_bytes"])
        chosen = actions.to_pylist()
        if not any(Path(a["path"]).name.startswith("partial-") for a in chosen):
            return 0
        run = (table.transaction_version(COMPACTION_APP_ID) or 0) + 1
        paths = [str(self.path / unquote(a["path"])) for a in chosen]
        types = self._schema_types(table)
        with self._scratch() as scratch:
            con = self._connect(scratch)
            try:
                con.execute(
                    f"CREATE TEMP VIEW kw_parts AS SELECT * FROM "
                    f"read_parquet({_list(paths)}, union_by_name = true)"
                )
                present = {r[0] for r in con.execute("DESCRIBE kw_parts").fetchall()}
                cols = ["customer_id", "day"]
                for name in ["events", "value_sum"] + [
                    p + t for t in types for p in (COUNT_PREFIX, VALUE_PREFIX)
                ]:
                    kind = (
                        "DOUBLE"
                        if name == "value_sum" or name.startswith(VALUE_PREFIX)
                        else "BIGINT"
                    )
                    value = f"coalesce(sum({_ident(name)}), 0)" if name in present else "0"
                    cols.append(f"CAST({value} AS {kind}) AS {_ident(name)}")
                query = (
                    f"SELECT {', '.join(cols)} FROM kw_parts GROUP BY customer_id, day "
                    "ORDER BY customer_id, day"
                )
                written = self._copy(con, query, "compacted")
            finally:
                con.close()
        now = int(time.time() * 1000)
        removes = [
            RemoveAction(
                path=a["path"], data_change=False, deletion_timestamp=now, size=a["size_bytes"]
            )
            for a in chosen
        ]
        try:
            self._commit(
                table,
                [*self._adds(written, data_change=False), *removes],
                mode="append",
                store_version=None,
                operation="compact",
                app=(COMPACTION_APP_ID, run),
            )
        except StoreError:
            for w in written:
                w.path.unlink(missing_ok=True)
            raise
        return sum(w.rows for w in written)

    def vacuum(self, *, retention_hours: int | None = None) -> int:
        """Delete files replaced more than ``retention_hours`` ago and orphans of failed
        writes; return how many."""
        hours = self.retention_hours if retention_hours is None else retention_hours
        table = self._table()
        if table is None:
            return 0
        deleted = table.vacuum(
            retention_hours=int(hours), dry_run=False, enforce_retention_duration=False, full=True
        )
        return len(deleted)


def _store_table(store: EventStore) -> DeltaTable | None:
    """The event store's current Delta snapshot (None before its first write)."""
    try:
        if not DeltaTable.is_deltatable(str(store.path)):
            return None
        return DeltaTable(str(store.path))
    except DeltaError as exc:
        raise StoreError(f"cannot read the event store at {store.path}: {exc}") from exc
