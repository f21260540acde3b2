"""Turn a file's columns into keepwell's fields: apply the mapping, check the header, trim cells.

Whole-file problems (a required column missing, a mapping naming absent columns or unknown
fields) raise :class:`~keepwell.errors.ImportFileError` here, before any row is looked at.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from keepwell.errors import ImportFileError
from keepwell.imports.mapping import ColumnMapping
from keepwell.imports.reader import RawTable
from keepwell.imports.schemas import FieldType, ImportSchema

MINOR_SUFFIX = "_minor"

ONE_OF = {"subscriptions": ("mrr", "price")}
"""Kinds that need at least one of several money columns (each also as ``<name>_minor``)."""


@dataclass(frozen=True)
class Frame:
    """A file's cells under keepwell's column names.

    Attributes:
        cells: keepwell column (a field, ``<money>_minor`` or ``attr_<name>``) -> trimmed text,
            null where empty; mapping value translations and defaults applied.
        sources: keepwell column -> the file column it came from (mapping defaults: none).
        ignored: file columns this kind does not use.
    """

    raw: RawTable
    schema: ImportSchema
    cells: dict[str, pa.Array]
    sources: dict[str, str | None]
    ignored: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.raw.table.num_rows

    def has(self, name: str) -> bool:
        return name in self.cells

    def attribute_columns(self) -> dict[str, pa.Array]:
        """Custom-attribute columns by attribute name (prefix removed)."""
        prefix = self.schema.extra_prefix
        if not prefix:
            return {}
        return {c.removeprefix(prefix): v for c, v in self.cells.items() if c.startswith(prefix)}


def column_names(schema: ImportSchema) -> list[str]:
    """Every column name the kind accepts (money fields also as ``<name>_minor``)."""
    names: list[str] = []
    for f in schema.fields:
        names.append(f.name)
        if f.type is FieldType.money:
            names.append(f.name + MINOR_SUFFIX)
    return names


def _is_known(schema: ImportSchema, name: str) -> bool:
    prefix = schema.extra_prefix
    return name in column_names(schema) or bool(
        prefix and name.startswith(prefix) and name != prefix
    )


def _clean(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _translate(cells: pa.Array, table: dict[str, str]) -> pa.Array:
    index = pc.index_in(cells, value_set=pa.array(list(table), pa.string()))
    translated = pc.take(pa.array(list(table.values()), pa.string()), index)
    return pc.if_else(pc.is_valid(index), translated, cells)


def _check_mapping_targets(schema: ImportSchema, mapping: ColumnMapping) -> None:
    for section, targets in (
        ("columns", mapping.columns),
        ("defaults", mapping.defaults),
        ("values", mapping.values),
    ):
        unknown = [t for t in targets if not _is_known(schema, t)]
        if unknown:
            raise ImportFileError(
                f"the mapping's [{section}] names {unknown}, which are not {schema.kind} columns",
                expected=f"one of {', '.join(column_names(schema))}",
            )


def _missing_hint(missing: list[str], header: list[str]) -> str:
    for name in missing:
        by_case = {h.lower().replace(" ", "_"): h for h in header}
        guess = by_case.get(name) or next(iter(difflib.get_close_matches(name, header, n=1)), None)
        if guess:
            return f"did you mean {guess!r}? map it with --map {name}={guess!r}"
    return "rename the column in the file, or map it with --map <field>=<your column>"


def prepare(raw: RawTable, schema: ImportSchema, mapping: ColumnMapping | None) -> Frame:
    """Map, check and trim the columns of ``raw`` for ``schema``'s kind.

    Raises:
        ImportFileError: the mapping names absent columns or unknown fields, two columns end
            up with one name, or a required column is missing (the message names it and lists
            every column the kind accepts).
    """
    mapping = mapping or ColumnMapping()
    _check_mapping_targets(schema, mapping)
    header = raw.columns
    renamed = mapping.rename(header)  # source -> target; raises for absent sources
    by_target: dict[str, str] = {}
    for source, target in renamed.items():
        if target in by_target:
            raise ImportFileError(
                f"two columns would both be {target!r}: {by_target[target]!r} and {source!r}",
                hint="map only one of them, or rename the other in the file",
            )
        by_target[target] = source

    cells: dict[str, pa.Array] = {}
    sources: dict[str, str | None] = {}
    ignored: list[str] = []
    for target, source in by_target.items():
        if not _is_known(schema, target):
            ignored.append(source)
            continue
        values = _clean(raw.table.column(source))
        if target in mapping.values:
            values = _translate(values, dict(mapping.values[target]))
        cells[target] = values
        sources[target] = source
    for target, constant in mapping.defaults.items():
        if target in cells:
            cells[target] = cells[target].fill_null(constant)
        else:
            cells[target] = pa.array([constant] * raw.table.num_rows, pa.string())
            sources[target] = None

    missing = []
    for f in schema.fields:
        if not f.required or f.name in cells:
            continue
        if f.type is FieldType.money and f.name + MINOR_SUFFIX in cells:
            continue
        missing.append(f.name)
    alternatives = ONE_OF.get(schema.kind, ())
    if alternatives and not any(a in cells or a + MINOR_SUFFIX in cells for a in alternatives):
        missing.append(" or ".join(f"{a}/{a}{MINOR_SUFFIX}" for a in alternatives))
    if missing:
        raise ImportFileError(
            f"{schema.kind} file is missing required column(s): {', '.join(missing)} "
            f"(the file has: {', '.join(header) or 'no columns'})",
            expected=f"columns {', '.join(column_names(schema))}",
            hint=_missing_hint(missing, header),
        )
    return Frame(raw=raw, schema=schema, cells=cells, sources=sources, ignored=ignored)
