"""The usage-event store: an append-only Delta Lake table of events on local disk.

Layout (``settings.resolved_events_path``)::

    events/
      _delta_log/00000000000000000000.json ...   the transaction log: which files make the table
      part-<batch>-<uuid>.parquet                appended files (one batch may write several)
      compacted-<batch>-<uuid>.parquet           compaction output, sorted by customer and time
      _keepwell/tmp-<uuid>/                      scratch space of a running operation

Guarantees:

* **Atomic appends.** A batch is written as Parquet files, then added by one Delta commit.
  Readers see every row of a batch or none; a writer killed mid-way leaves the table as it
  was (its files are orphans, ignored by readers and deleted by :meth:`EventStore.vacuum`).
* **Idempotent batches.** ``append(..., batch_key=k)`` records ``k`` as a Delta application
  transaction *in the same commit* as the data, so a batch is in the table at most once, also
  when two processes race with the same key.
* **Incremental log reads.** Each process keeps one up-to-date snapshot per store (shared by
  every ``EventStore`` object of the path) and refreshes it incrementally: an append reads only
  the commits made since, looks its batch key up in that snapshot and commits on it. A
  checkpoint every :data:`CHECKPOINT_EVERY` versions keeps a refresh or a fresh open short.
* **Snapshot reads.** A reader works on one table version; compaction only marks files as
  removed, and vacuum deletes them once the retention (default 7 days) has passed, so a query
  that started before either still finds its files.

Writes go through DuckDB (``COPY ... TO`` Parquet, with per-file statistics) plus
``DeltaTable.create_write_transaction``: for a 10M-row Arrow stream this measured 3.3 s against
4.2-4.5 s for ``write_deltalake`` on the same 2-core machine (see docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, RemoveAction

from keepwell.config import Settings
from keepwell.errors import InvalidInput, StoreError
from keepwell.events.duck import connect, ident, literal_list
from keepwell.events.schema import COLUMNS, REQUIRED, SCHEMA, check_schema, empty_select
from keepwell.events.staging import StagedBatch, StagedFile

DEFAULT_RETENTION_HOURS = 168
"""How long removed and orphaned files are kept before vacuum deletes them (7 days)."""

DEFAULT_TARGET_FILE_BYTES = 256 * 1024 * 1024
"""Files are cut at about this size (appends and compaction)."""

CHECKPOINT_EVERY = 10
"""A Delta checkpoint is written after every this many versions: opening or refreshing the table
replays the commits since the last checkpoint, so without one each append got slower (Delta's
own default interval, 100, let an append take 3x longer just before a checkpoint)."""

KEYS_REMEMBERED = 10_000
"""Batch keys each process remembers per store (committed ones, and absent ones with the
version they were looked up at); older ones are looked up in the log again."""

BATCH_APP_PREFIX = "keepwell.events.batch:"
COMPACTION_APP_ID = "keepwell.events.compaction"
SCRATCH_DIR = "_keepwell"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppendResult:
    """The outcome of one append.

    ``version`` is the table version after the commit (a concurrent writer may have added
    more); ``skipped`` says the batch key was committed before and nothing was written.
    """

    rows: int
    files: int
    version: int | None
    skipped: bool = False
    batch_key: str | None = None


@dataclass(frozen=True)
class StoreInfo:
    """Size and extent of the store's current snapshot."""

    path: Path
    exists: bool
    rows: int
    files: int
    bytes: int
    version: int | None
    first_at: datetime | None
    last_at: datetime | None


@dataclass(frozen=True)
class CompactResult:
    """What a compaction did; ``version`` is None when there was nothing to compact."""

    files_removed: int
    files_added: int
    rows: int
    bytes_before: int
    bytes_after: int
    version: int | None


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Snapshot:
    """A process's up-to-date view of one store's Delta table, shared by every
    :class:`EventStore` of that path (the web app makes one per request).

    Used only under ``lock``: a ``DeltaTable`` must not be refreshed or committed from two
    threads at once, and a batch key's check and its commit must see the same version.
    ``committed`` holds batch keys known to be in the table (a key never leaves it);
    ``absent`` maps keys to the version at which they were not (valid while it is current).
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    table: DeltaTable | None = None
    log_id: tuple[int, int] | None = None
    committed: dict[str, None] = field(default_factory=dict)
    absent: dict[str, int] = field(default_factory=dict)

    def forget(self) -> None:
        self.table = None
        self.log_id = None
        self.committed.clear()
        self.absent.clear()

    def has(self, app_id: str) -> bool:
        """Whether ``app_id`` is committed in the current ``table`` (at most one log lookup)."""
        table = self.table
        if table is None:
            return False
        if app_id in self.committed:
            return True
        version = table.version()
        if self.absent.get(app_id) == version:
            return False
        if table.transaction_version(app_id) is not None:
            _remember(self.committed, app_id, None)
            self.absent.pop(app_id, None)
            return True
        _remember(self.absent, app_id, version)
        return False


def _remember(cache: dict, key: str, value: object) -> None:
    cache[key] = value
    if len(cache) > KEYS_REMEMBERED:
        del cache[next(iter(cache))]  # the oldest


_SNAPSHOTS: dict[Path, _Snapshot] = {}
_SNAPSHOTS_LOCK = threading.Lock()


class EventStore:
    """Append-only usage events in a Delta Lake table (see the module docstring).

    Args:
        path: the table's directory (created on the first append).
        retention_hours: age after which :meth:`vacuum` deletes removed and orphaned files.
            Must exceed the longest query or append that may run concurrently.
        target_file_bytes: approximate size at which Parquet files are cut.
    """

    SCHEMA: ClassVar[pa.Schema] = SCHEMA

    def __init__(
        self,
        path: Path,
        *,
        retention_hours: int = DEFAULT_RETENTION_HOURS,
        target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
    ) -> None:
        if retention_hours < 0:
            raise InvalidInput("retention must not be negative", field="retention_hours")
        self.path = Path(path).resolve()
        self.retention_hours = retention_hours
        self.target_file_bytes = target_file_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> EventStore:
        """The store at ``settings.resolved_events_path``."""
        return cls(settings.resolved_events_path)

    def __repr__(self) -> str:
        return f"EventStore({str(self.path)!r})"

    # -- the Delta table ---------------------------------------------------------------------

    def _table(self) -> DeltaTable | None:
        """The current snapshot, or None when the store has no table yet."""
        try:
            if not DeltaTable.is_deltatable(str(self.path)):
                return None
            return DeltaTable(str(self.path))
        except DeltaError as exc:
            raise StoreError(f"cannot read the event store at {self.path}: {exc}") from exc

    def ensure_root(self) -> Path:
        """Create the store's directory if needed; return it (the table comes with a commit)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def _ensure_table(self) -> DeltaTable:
        """The current snapshot; creates the empty table (version 0) if there is none."""
        table = self._table()
        if table is not None:
            return table
        self.ensure_root()
        try:
            DeltaTable.create(
                str(self.path),
                schema=SCHEMA,
                mode="ignore",
                name="keepwell_events",
                description="keepwell usage events (append-only)",
            )
        except DeltaError as exc:
            if self._table() is None:  # not a lost creation race: a real failure
                raise StoreError(f"cannot create the event store at {self.path}: {exc}") from exc
        return DeltaTable(str(self.path))

    def _snapshot(self) -> _Snapshot:
        with _SNAPSHOTS_LOCK:
            return _SNAPSHOTS.setdefault(self.path, _Snapshot())

    def _log_id(self) -> tuple[int, int] | None:
        try:
            stat = (self.path / "_delta_log").stat()
        except OSError:
            return None
        return stat.st_dev, stat.st_ino

    def _refresh(self, snap: _Snapshot, *, create: bool) -> DeltaTable | None:
        """``snap``'s table brought up to date (the caller holds ``snap.lock``): only commits
        since the last refresh are read. A log directory that was replaced (the store deleted
        and made again) or cannot be refreshed is opened afresh."""
        log_id = self._log_id()
        if snap.table is not None and log_id is not None and log_id == snap.log_id:
            try:
                snap.table.update_incremental()
            except DeltaError:
                snap.forget()
            else:
                return snap.table
        snap.forget()
        table = self._ensure_table() if create else self._table()
        snap.table, snap.log_id = table, self._log_id()
        return table

    def _skipped(self, batch_key: str) -> AppendResult | None:
        """The answer for a ``batch_key`` committed before; None if it was not."""
        snap = self._snapshot()
        with snap.lock:
            table = self._refresh(snap, create=False)
            if table is None or not snap.has(BATCH_APP_PREFIX + batch_key):
                return None
            return AppendResult(
                rows=0, files=0, version=table.version(), skipped=True, batch_key=batch_key
            )

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private temporary directory on the store's disk, deleted afterwards."""
        path = self.path / SCRATCH_DIR / f"tmp-{uuid.uuid4().hex}"
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def stage(self, *, prefix: str = "part") -> StagedBatch:
        """A batch of files to write with DuckDB and commit at once (see :class:`StagedBatch`)."""
        return StagedBatch(store=self, prefix=prefix)

    @staticmethod
    def _adds(files: list[StagedFile], *, data_change: bool) -> list[AddAction]:
        import json

        return [
            AddAction(
                path=f.path.name,
                size=f.size,
                partition_values={},
                modification_time=int(f.path.stat().st_mtime * 1000),
                data_change=data_change,
                stats=json.dumps(f.stats),
            )
            for f in files
        ]

    # -- writing -----------------------------------------------------------------------------

    def append(
        self, data: pa.Table | pa.RecordBatchReader, /, *, batch_key: str | None = None
    ) -> AppendResult:
        """Append ``data`` in one atomic commit.

        ``data`` must have the store's columns (optional ones may be missing, order is free; see
        :func:`keepwell.events.schema.check_schema`) and no nulls in required columns. A
        ``RecordBatchReader`` is streamed, never held in memory whole.

        Raises:
            InvalidInput: the data does not fit the schema (names the column and row).
            StoreError: the table cannot be written.
        """
        if batch_key is not None and (skipped := self._skipped(batch_key)) is not None:
            return skipped
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if isinstance(data, pa.Table):
            missing = check_schema(data.schema)
            _check_nulls(data, offset=0)
            source: pa.Table | pa.RecordBatchReader = data
            problems: list[InvalidInput] = []
        elif isinstance(data, pa.RecordBatchReader):
            missing = check_schema(data.schema)
            source, problems = _checked_reader(data)
        else:
            raise InvalidInput(
                f"cannot append a {type(data).__name__}",
                expected="a pyarrow Table or RecordBatchReader",
            )
        columns = ", ".join(f"NULL AS {ident(c)}" if c in missing else ident(c) for c in COLUMNS)
        with self.scratch() as scratch, self.stage() as batch:
            con = connect(scratch=scratch)
            try:
                con.register("keepwell_append_input", source)
                batch.copy(con, f"SELECT {columns} FROM keepwell_append_input")
            except duckdb.Error as exc:
                if problems:
                    raise problems[0] from None
                raise StoreError(f"cannot write the events: {exc}".splitlines()[0]) from exc
            finally:
                con.close()
            return batch.commit(batch_key=batch_key)

    def commit_append(self, batch: StagedBatch, *, batch_key: str | None) -> AppendResult:
        """Add ``batch``'s files (plus ``batch_key``) in one commit; skip a known key.

        The key is looked up in the very snapshot the commit builds on (this process's appends
        to the store take turns here); a writer in another process that commits the same key
        after that snapshot makes this commit fail Delta's conflict check, and it is skipped.
        """
        app_id = BATCH_APP_PREFIX + batch_key if batch_key is not None else None
        snap = self._snapshot()
        with snap.lock:
            table = self._refresh(snap, create=True)
            assert table is not None
            if app_id is not None and snap.has(app_id):
                return AppendResult(
                    rows=0, files=0, version=table.version(), skipped=True, batch_key=batch_key
                )
            if not batch.files and app_id is None:
                return AppendResult(rows=0, files=0, version=table.version(), batch_key=None)
            metadata = {"keepwell.operation": "append", "keepwell.rows": batch.rows}
            if batch_key is not None:
                metadata["keepwell.batch_key"] = batch_key
            try:
                table.create_write_transaction(
                    self._adds(batch.files, data_change=True),
                    mode="append",
                    schema=SCHEMA,
                    commit_properties=CommitProperties(
                        app_transactions=[Transaction(app_id, 1)] if app_id else None,
                        custom_metadata=metadata,
                    ),
                )
            except CommitFailedError as exc:
                table = self._refresh(snap, create=True)
                if table is not None and app_id is not None and snap.has(app_id):
                    return AppendResult(
                        rows=0, files=0, version=table.version(), skipped=True, batch_key=batch_key
                    )
                raise StoreError(f"cannot commit the events: {exc}") from exc
            except DeltaError as exc:
                snap.forget()
                raise StoreError(f"cannot commit the events: {exc}") from exc
            if app_id is not None:
                _remember(snap.committed, app_id, None)
                snap.absent.pop(app_id, None)
            try:
                table.update_incremental()
            except DeltaError:  # committed all the same: never report a written batch as failed
                snap.forget()
                version = None
            else:
                version = table.version()
                if version % CHECKPOINT_EVERY == 0:
                    self._checkpoint(table)
            return AppendResult(
                rows=batch.rows, files=len(batch.files), version=version, batch_key=batch_key
            )

    def _checkpoint(self, table: DeltaTable) -> None:
        """Write a checkpoint of ``table``'s version (best effort: the data is committed)."""
        try:
            table.create_checkpoint()
        except (DeltaError, OSError) as exc:
            log.warning(
                "event store %s: no checkpoint at version %s: %s", self.path, table.version(), exc
            )

    # -- reading -----------------------------------------------------------------------------

    def has_batch(self, batch_key: str) -> bool:
        """Whether a batch with this key was committed."""
        return self._skipped(batch_key) is not None

    def version(self) -> int | None:
        """The table's current version (None before the first write)."""
        table = self._table()
        return None if table is None else table.version()

    def _paths(self, table: DeltaTable) -> list[str]:
        return [unquote(u.removeprefix("file://")) for u in table.file_uris()]

    def files(self) -> list[str]:
        """Absolute paths of the Parquet files of the current snapshot."""
        table = self._table()
        return [] if table is None else self._paths(table)

    def register(self, con: duckdb.DuckDBPyConnection, name: str = "events") -> None:
        """Create (or replace) a temporary DuckDB view ``name`` over the current snapshot.

        The view is pinned to the files of this snapshot: call again to see later appends. Its
        files stay on disk for at least the retention, also if compaction replaces them.
        """
        files = self.files()
        columns = ", ".join(ident(c) for c in COLUMNS)
        query = (
            f"SELECT {columns} FROM read_parquet({literal_list(files)})"
            if files
            else empty_select()
        )
        con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name)} AS {query}")

    def count(self) -> int:
        """Number of events (from the files' statistics: no data is read)."""
        table = self._table()
        return 0 if table is None else int(table.count())

    def info(self) -> StoreInfo:
        """Rows, files, bytes, version and first/last ``occurred_at`` of the current snapshot."""
        table = self._table()
        if table is None:
            return StoreInfo(self.path, False, 0, 0, 0, None, None, None)
        actions = pa.table(table.get_add_actions(flatten=True))
        first = last = None
        if actions.num_rows:
            names = actions.column_names
            if "min.occurred_at" in names and actions.column("min.occurred_at").null_count == 0:
                first = pc.min(actions.column("min.occurred_at")).as_py()
                last = pc.max(actions.column("max.occurred_at")).as_py()
            else:  # files written without statistics: read the column
                with duckdb.connect() as con:
                    con.execute("SET TimeZone = 'UTC'")
                    first, last = con.execute(
                        "SELECT min(occurred_at), max(occurred_at) FROM read_parquet(?)",
                        [self._paths(table)],
                    ).fetchone()
        return StoreInfo(
            path=self.path,
            exists=True,
            rows=int(table.count()),
            files=actions.num_rows,
            bytes=int(pc.sum(actions.column("size_bytes")).as_py() or 0),
            version=table.version(),
            first_at=first,
            last_at=last,
        )

    # -- maintenance -------------------------------------------------------------------------

    def compact(self) -> CompactResult:
        """Rewrite appended and small files into big ones sorted by (customer_id, occurred_at).

        Files from earlier compactions that reached a quarter of ``target_file_bytes`` are left
        alone, so each run costs about the data appended since the last. One atomic commit:
        readers keep their snapshot; the replaced files stay on disk until :meth:`vacuum`.
        Two compactions racing are detected (a Delta application transaction); the loser
        changes nothing and raises :class:`StoreError`.
        """
        table = self._table()
        actions = (
            []
            if table is None
            else pa.table(table.get_add_actions(flatten=True))
            .select(["path", "size_bytes"])
            .to_pylist()
        )
        small = self.target_file_bytes // 4
        chosen = [
            a
            for a in actions
            if not Path(a["path"]).name.startswith("compacted-") or a["size_bytes"] < small
        ]
        fresh = [a for a in chosen if not Path(a["path"]).name.startswith("compacted-")]
        if table is None or (not fresh and len(chosen) < 2):
            size = sum(a["size_bytes"] for a in actions)
            return CompactResult(0, 0, 0, size, size, None)
        run = (table.transaction_version(COMPACTION_APP_ID) or 0) + 1
        paths = [str(self.path / unquote(a["path"])) for a in chosen]
        with self.scratch() as scratch, self.stage(prefix="compacted") as batch:
            con = connect(scratch=scratch)
            try:
                source = f"SELECT * FROM read_parquet({literal_list(paths)})"
                (expected,) = con.execute(f"SELECT count(*) FROM ({source})").fetchone()
                rows = batch.copy(
                    con, source, order_by='"customer_id", "occurred_at"', compression="zstd"
                )
            finally:
                con.close()
            if rows != expected:
                raise StoreError(
                    f"compaction wrote {rows} rows instead of {expected}; nothing changed"
                )
            now = _now_ms()
            removes = [
                RemoveAction(
                    path=a["path"], data_change=False, deletion_timestamp=now, size=a["size_bytes"]
                )
                for a in chosen
            ]
            try:
                table.create_write_transaction(
                    [*self._adds(batch.files, data_change=False), *removes],
                    mode="append",
                    schema=SCHEMA,
                    commit_properties=CommitProperties(
                        app_transactions=[Transaction(COMPACTION_APP_ID, run)],
                        custom_metadata={"keepwell.operation": "compact", "keepwell.rows": rows},
                    ),
                )
            except CommitFailedError as exc:
                raise StoreError(
                    f"another compaction of {self.path} committed first; nothing was changed",
                    hint="run the compaction again",
                ) from exc
            batch.committed = True
            table.update_incremental()
            return CompactResult(
                files_removed=len(chosen),
                files_added=len(batch.files),
                rows=rows,
                bytes_before=sum(a["size_bytes"] for a in chosen),
                bytes_after=sum(f.size for f in batch.files),
                version=table.version(),
            )

    def vacuum(self, *, retention_hours: int | None = None) -> int:
        """Delete files no snapshot younger than the retention needs; return how many.

        Deletes (a) files that compaction removed more than ``retention_hours`` ago and (b)
        orphans of failed or killed appends older than that (a Delta "full" vacuum), plus
        stale scratch directories. Keep the retention longer than any query or append that may
        run meanwhile: a reader of an old snapshot would miss files deleted under it.
        """
        hours = self.retention_hours if retention_hours is None else retention_hours
        if hours < 0:
            raise InvalidInput("retention must not be negative", field="retention_hours")
        table = self._table()
        if table is None:
            return 0
        try:
            deleted = table.vacuum(
                retention_hours=int(hours),
                dry_run=False,
                enforce_retention_duration=False,
                full=True,
            )
        except DeltaError as exc:
            raise StoreError(f"vacuum of {self.path} failed: {exc}") from exc
        cutoff = time.time() - hours * 3600
        for scratch in (self.path / SCRATCH_DIR).glob("tmp-*"):
            if scratch.stat().st_mtime < cutoff:
                shutil.rmtree(scratch, ignore_errors=True)
        return len(deleted)


def _first_null(column: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.index(pc.is_null(column), True).as_py())


def _check_nulls(data: pa.Table | pa.RecordBatch, *, offset: int) -> None:
    """Raise InvalidInput naming the first row with a null required value."""
    for name in REQUIRED:
        column = data.column(name)
        if column.null_count:
            raise InvalidInput(
                f"{column.null_count} row(s) have no value",
                row=offset + _first_null(column) + 1,
                field=name,
                expected="a value in every row",
            )


def _checked_reader(
    reader: pa.RecordBatchReader,
) -> tuple[pa.RecordBatchReader, list[InvalidInput]]:
    """``reader`` with every batch checked for nulls; a problem is kept to re-raise it later."""
    problems: list[InvalidInput] = []

    def batches() -> Iterator[pa.RecordBatch]:
        offset = 0
        for batch in reader:
            try:
                _check_nulls(batch, offset=offset)
            except InvalidInput as exc:
                problems.append(exc)
                raise
            offset += batch.num_rows
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches()), problems
