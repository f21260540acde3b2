"""Incremental writers for the demo files: CSV tables and a directory of Parquet event parts.

Chunks of rows are appended as they are simulated, so no file is ever held in memory whole.
Output is byte-for-byte deterministic for the same input tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

EVENT_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("properties", pa.string()),
    ]
)
"""Schema of the event Parquet parts (see keepwell.imports.schemas.EVENTS)."""

PART_ROWS = 4_000_000
"""Events per Parquet part (a part holds whole batches, so it may be somewhat larger)."""

NEVER = np.iinfo(np.int64).max
"""Marks a missing instant in int64 second arrays."""


def iso(seconds: np.ndarray) -> pa.Array:
    """ISO 8601 UTC strings (``2026-03-01T09:30:00Z``); ``NEVER`` or negative becomes null."""
    seconds = np.asarray(seconds, dtype=np.int64)
    missing = (seconds == NEVER) | (seconds < 0)
    stamps = pa.array(np.where(missing, 0, seconds), mask=missing).cast(pa.timestamp("s"))
    return pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ")


def optional_int(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    """An int64 column with nulls where ``missing``."""
    return pa.array(np.where(missing, 0, values).astype(np.int64), mask=missing)


class CsvSink:
    """Appends tables of one fixed schema to a CSV file (header written once)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._writer = pa_csv.CSVWriter(str(path), schema)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.select(self.schema.names).cast(self.schema))
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()


class EventSink:
    """Writes event batches as ``events/part-00000.parquet``, ... (zstd)."""

    def __init__(self, directory: Path, *, part_rows: int | None = None) -> None:
        self.directory = directory
        self.part_rows = part_rows or PART_ROWS
        self.parts: list[Path] = []
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.part_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        path = self.directory / f"part-{len(self.parts):05d}.parquet"
        table = pa.concat_tables(self._pending).cast(EVENT_SCHEMA)
        pq.write_table(table, path, compression="zstd", row_group_size=1_048_576)
        self.parts.append(path)
        self.rows += table.num_rows
        self._pending = []
        self._pending_rows = 0

    def close(self) -> None:
        self._flush()
        if not self.parts:  # an empty but valid dataset: one part with no rows
            path = self.directory / "part-00000.parquet"
            pq.write_table(EVENT_SCHEMA.empty_table(), path, compression="zstd")
            self.parts.append(path)
