"""Write small import files for tests: CSV (any delimiter/encoding) and Parquet."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
) -> Path:
    """Write ``rows`` under ``header`` (None -> empty cell) and return ``path``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    data = buffer.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def write_parquet(path: Path, columns: dict[str, pa.Array | list[Any]]) -> Path:
    """Write ``columns`` (name -> values; Arrow infers types of plain lists) as Parquet."""
    pq.write_table(pa.table(columns), path)
    return path


CUSTOMER_HEADER = ["external_id", "name", "signup_at"]


def customers_csv(path: Path, ids: Sequence[str]) -> Path:
    """A minimal customers file: one row per id, signed up on 2026-01-01."""
    return write_csv(path, CUSTOMER_HEADER, [[i, f"Customer {i}", "2026-01-01"] for i in ids])
