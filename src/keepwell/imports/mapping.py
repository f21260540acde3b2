"""Column mappings: import another tool's export without editing it.

A mapping is a TOML file (``--mapping FILE``) or ``--map target=Source`` options::

    [columns]                 # keepwell field = column in your file
    external_id = "id"
    customer_id = "Customer ID"
    price = "Amount"

    [defaults]                # constant values for fields the file does not have
    billing_period = "month"

    [values.status]           # translate values of one field: source value = keepwell value
    past_due = "past_due"
    incomplete_expired = "canceled"

    [options]
    timezone = "UTC"          # zone for timestamps written without an offset

Columns the mapping does not name keep their own names, so a file that already uses keepwell's
names needs no mapping.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from keepwell.errors import ImportFileError, InvalidInput


@dataclass(frozen=True)
class ColumnMapping:
    """How a file's columns and values become keepwell's fields."""

    columns: Mapping[str, str] = field(default_factory=dict)  # target -> source column
    defaults: Mapping[str, str] = field(default_factory=dict)  # target -> constant text
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # target -> {src: dst}
    timezone: str | None = None

    @classmethod
    def load(cls, path: Path) -> ColumnMapping:
        """Read a TOML mapping file; a bad file is an :class:`InvalidInput` naming the problem."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"mapping file {path} is not valid TOML: {exc}") from exc
        unknown = set(data) - {"columns", "defaults", "values", "options"}
        if unknown:
            raise InvalidInput(
                f"mapping file {path} has unknown sections {sorted(unknown)}",
                expected="[columns], [defaults], [values.<field>], [options]",
            )
        for section in ("columns", "defaults"):
            for key, value in data.get(section, {}).items():
                if not isinstance(value, str):
                    raise InvalidInput(
                        f"mapping file {path}: [{section}] {key} must be a string, got {value!r}"
                    )
        return cls(
            columns=dict(data.get("columns", {})),
            defaults=dict(data.get("defaults", {})),
            values={
                k: {str(a): str(b) for a, b in v.items()} for k, v in data.get("values", {}).items()
            },
            timezone=data.get("options", {}).get("timezone"),
        )

    @classmethod
    def from_pairs(cls, pairs: Iterable[str], base: ColumnMapping | None = None) -> ColumnMapping:
        """Add ``target=Source column`` pairs (from ``--map``) on top of ``base``."""
        columns = dict(base.columns) if base else {}
        for pair in pairs:
            target, sep, source = pair.partition("=")
            if not sep or not target.strip() or not source.strip():
                raise InvalidInput(
                    f"bad --map {pair!r}", expected="target=Source column, e.g. external_id=id"
                )
            columns[target.strip()] = source.strip()
        return cls(
            columns=columns,
            defaults=dict(base.defaults) if base else {},
            values=dict(base.values) if base else {},
            timezone=base.timezone if base else None,
        )

    def rename(self, header: Iterable[str]) -> dict[str, str]:
        """Map each column of ``header`` to its keepwell name (source -> target).

        Raises :class:`ImportFileError` when the mapping names a column the file lacks.
        """
        header = list(header)
        present = set(header)
        missing = [src for src in self.columns.values() if src not in present]
        if missing:
            raise ImportFileError(
                f"the mapping names column(s) {missing} that the file does not have",
                expected=f"one of the file's columns {header}",
            )
        by_source = {src: target for target, src in self.columns.items()}
        return {col: by_source.get(col, col) for col in header}
