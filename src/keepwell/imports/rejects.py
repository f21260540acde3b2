"""Write the rejected rows of an import to a CSV file, with their reasons, for fixing."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa

from keepwell.imports.reader import RawTable
from keepwell.imports.summary import Reject
from keepwell.models import utcnow

REASON_COLUMNS = ("row", "field", "reason")


def rejects_file(rejects_dir: Path, kind: str) -> Path:
    """A new file ``<kind>-<UTC timestamp>-rejects.csv`` in ``rejects_dir`` (created)."""
    rejects_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{utcnow().strftime('%Y%m%dT%H%M%SZ')}"
    path = rejects_dir / f"{stem}-rejects.csv"
    n = 1
    while path.exists():
        n += 1
        path = rejects_dir / f"{stem}-{n}-rejects.csv"
    return path


def _original_cells(raw: RawTable, numbers: list[int]) -> dict[int, dict[str, str | None]]:
    """Data row number -> the row's cells as read (rows that were not parsed are absent)."""
    positions = np.searchsorted(raw.rows, numbers).tolist()
    found = [
        (number, position)
        for number, position in zip(numbers, positions, strict=True)
        if position < len(raw.rows) and raw.rows[position] == number
    ]
    taken = raw.table.take(pa.array([p for _, p in found], pa.int64()))
    return dict(zip([n for n, _ in found], taken.to_pylist(), strict=True))


def write_rejects(*, rejects_dir: Path, kind: str, raw: RawTable, rejects: list[Reject]) -> Path:
    """Write one line per rejected row: ``row, field, reason`` then the row's original cells.

    A row with several problems lists its fields and reasons separated by ``"; "``, in the
    same order. A row that could not be split into columns carries its text in ``reason``.
    """
    by_row: dict[int, list[Reject]] = defaultdict(list)
    for reject in rejects:
        by_row[reject.row].append(reject)
    numbers = sorted(by_row)
    originals = _original_cells(raw, numbers)
    ours = [c if c not in raw.columns else f"reject_{c}" for c in REASON_COLUMNS]
    path = rejects_file(rejects_dir, kind)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*ours, *raw.columns])
        for number in numbers:
            problems = by_row[number]
            fields = "; ".join(r.field or "" for r in problems)
            reasons = "; ".join(
                r.reason + (f": {r.value}" if r.field is None and r.value else "") for r in problems
            )
            cells = originals.get(number, {})
            writer.writerow([number, fields, reasons, *(cells.get(c) or "" for c in raw.columns)])
    return path
