"""What an import reports back: counts, and every rejected row with its reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Reject:
    """One rejected row: ``row`` is the 1-based data row (the header is not counted)."""

    row: int
    field: str | None
    reason: str
    value: str | None = None

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", field {self.field!r}" if self.field else "")
        got = f" (got {self.value!r})" if self.value is not None else ""
        return f"{where}: {self.reason}{got}"


@dataclass
class ImportSummary:
    """The outcome of importing one file.

    ``inserted + updated + unchanged + rejected == rows`` always holds: no row is dropped
    silently. ``rejects_path`` is the CSV of rejected rows with their reasons, if any.
    """

    kind: str
    source: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    rejects_path: Path | None = None
    skipped_file: bool = False  # the same file was imported before (events)
    notes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def check(self) -> None:
        assert self.accepted + self.rejected == self.rows, self
