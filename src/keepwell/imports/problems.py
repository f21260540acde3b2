"""Collect row problems found column-wise, then turn them into :class:`Reject` entries."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from keepwell.imports.summary import Reject

Reason = str | Callable[[str | None], str]
"""A fixed reason, or a function of the offending value (called only for bad rows)."""


class Problems:
    """Row problems of one file, recorded as boolean masks over its rows.

    ``rows`` maps a table position to its 1-based data row number (header not counted).
    """

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.bad = np.zeros(len(rows), dtype=bool)
        self._entries: list[tuple[int, int, Reject]] = []
        self._order = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(
        self,
        mask: np.ndarray | pa.Array | pa.ChunkedArray,
        field: str | None,
        reason: Reason,
        values: pa.Array | pa.ChunkedArray | np.ndarray | None = None,
    ) -> None:
        """Reject the rows where ``mask`` is true for ``reason`` (nulls in the mask are false)."""
        mask = as_bool(mask)
        positions = np.flatnonzero(mask)
        if not len(positions):
            return
        self.bad[positions] = True
        picked: list[str | None]
        if values is None:
            picked = [None] * len(positions)
        elif isinstance(values, np.ndarray):
            picked = [None if v is None else str(v) for v in values[positions]]
        else:
            picked = values.take(pa.array(positions)).to_pylist()
        for position, value in zip(positions.tolist(), picked, strict=True):
            text = reason(value) if callable(reason) else reason
            self._order += 1
            self._entries.append(
                (position, self._order, Reject(int(self.rows[position]), field, text, value))
            )

    def add_reject(self, reject: Reject) -> None:
        """Record a problem found outside the table (e.g. a row that could not be parsed)."""
        self._order += 1
        self._entries.append((-1, self._order, reject))

    def rejects(self) -> list[Reject]:
        """Every problem, ordered by row, then in the order found."""
        return [r for _, _, r in sorted(self._entries, key=lambda e: (e[2].row, e[1]))]


def as_bool(mask: np.ndarray | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numpy bool array from an Arrow boolean array; nulls count as false."""
    if isinstance(mask, np.ndarray):
        return mask.astype(bool, copy=False)
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return mask.fill_null(False).to_numpy(zero_copy_only=False).astype(bool, copy=False)
