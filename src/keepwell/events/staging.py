"""Parquet files written into the table directory before they are committed.

DuckDB's ``COPY ... TO`` writes the files (in parallel, straight from its query) and returns
per-file row counts and column statistics, which become the Delta ``add`` actions' stats. Until
:meth:`StagedBatch.commit` puts them in the transaction log the files are invisible to every
reader; a failed or killed writer leaves only such orphans, which :meth:`EventStore.vacuum`
removes once they are older than the retention.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from keepwell.events.duck import literal
from keepwell.events.schema import COLUMNS, DESCRIBED_TYPES, typed_select

if TYPE_CHECKING:
    from keepwell.events.store import AppendResult, EventStore

MAX_STAT_CHARS = 256  # longer string min/max values are left out of the file stats


@dataclass(frozen=True)
class StagedFile:
    """One written, not yet committed Parquet file."""

    path: Path
    rows: int
    size: int
    stats: dict[str, Any]


def _timestamp_stat(text: str) -> str:
    """DuckDB's ``2025-01-05 06:23:59.5+00`` as Delta's ``2025-01-05T06:23:59.500000Z``."""
    moment = datetime.fromisoformat(text).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def delta_stats(rows: int, column_stats: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Delta file statistics (numRecords, nullCount, minValues, maxValues) from DuckDB's.

    A min/max is only recorded when it is exact (no NaN, finite, short strings), so readers that
    skip files by these stats never skip a file they need.
    """
    by_name = {k.strip('"'): v for k, v in column_stats.items()}
    nulls: dict[str, int] = {}
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for name in COLUMNS:
        stat = by_name.get(name)
        if stat is None:
            continue
        if "null_count" in stat:
            nulls[name] = int(stat["null_count"])
        low, high = stat.get("min"), stat.get("max")
        if low is None or high is None:
            continue
        if name == "occurred_at":
            mins[name], maxs[name] = _timestamp_stat(low), _timestamp_stat(high)
        elif name == "value":
            if stat.get("has_nan") == "true":
                continue
            lo, hi = float(low), float(high)
            if math.isfinite(lo) and math.isfinite(hi):
                mins[name], maxs[name] = lo, hi
        elif len(low) <= MAX_STAT_CHARS and len(high) <= MAX_STAT_CHARS:
            mins[name], maxs[name] = low, high
    return {"numRecords": rows, "nullCount": nulls, "minValues": mins, "maxValues": maxs}


@dataclass
class StagedBatch:
    """Files written for one commit. Use as a context manager: uncommitted files are deleted.

    Example::

        with store.stage() as batch:
            batch.copy(con, "SELECT ... FROM read_csv(...)")
            result = batch.commit(batch_key="...")
    """

    store: EventStore
    prefix: str = "part"
    files: list[StagedFile] = field(default_factory=list)
    committed: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def pattern(self) -> str:
        """File name pattern of this batch (DuckDB fills ``{uuid}``)."""
        return f"{self.prefix}-{self.id}-{{uuid}}"

    def copy(
        self,
        con: duckdb.DuckDBPyConnection,
        query: str,
        *,
        order_by: str | None = None,
        compression: str = "snappy",
    ) -> int:
        """Write the rows of ``query`` (the store's columns) as Parquet files; return the count.

        Columns are cast to the store's types (unless they have them already); files are cut
        at ``store.target_file_bytes``.
        On error every file of this batch is deleted and the error re-raised.
        """
        order = f" ORDER BY {order_by}" if order_by else ""
        root = self.store.ensure_root()
        described = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {query}").fetchall()]
        if described != list(DESCRIBED_TYPES.items()):  # casting costs ~10%: only if needed
            query = f"SELECT {typed_select('q')} FROM ({query}) AS q"
        sql = (
            f"COPY ({query}{order}) "
            f"TO {literal(str(root))} (FORMAT parquet, COMPRESSION {compression}, "
            f"FILE_SIZE_BYTES {self.store.target_file_bytes}, "
            f"FILENAME_PATTERN {literal(self.pattern)}, RETURN_STATS, APPEND)"
        )
        try:
            written = con.execute(sql).fetchall()
        except BaseException:
            self.discard()
            raise
        count = 0
        for filename, rows, size, _footer, column_stats, _partition in written:
            path = Path(filename)
            if not rows:
                path.unlink(missing_ok=True)
                continue
            count += rows
            self.files.append(
                StagedFile(path=path, rows=rows, size=size, stats=delta_stats(rows, column_stats))
            )
        return count

    def discard(self) -> None:
        """Delete this batch's files (written or half-written)."""
        root = self.store.path
        if root.exists():
            for path in root.glob(f"{self.prefix}-{self.id}-*.parquet"):
                path.unlink(missing_ok=True)
        self.files.clear()

    def commit(self, *, batch_key: str | None = None) -> AppendResult:
        """Append the files to the store in one Delta commit (see :meth:`EventStore.append`).

        If ``batch_key`` was committed before (or is committed concurrently), nothing is
        added, the files are deleted and the result says ``skipped``.
        """
        result = self.store.commit_append(self, batch_key=batch_key)
        self.committed = not result.skipped
        if result.skipped:
            self.discard()
        return result

    def __enter__(self) -> StagedBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()
