"""Row checks of an events import, as SQL that DuckDB runs over the whole file at once.

For every field of :data:`keepwell.imports.schemas.EVENTS` the plan has a *value* expression
(the typed store column), a *bad* condition (cheap: it filters every row) and the *reasons* (only
evaluated for rejected rows). A row is accepted when no field is bad:

=============  ==========================================================================
customer_id    trimmed, not empty; in ``known_customer_ids`` when those are given
event          trimmed, not empty, at most 200 characters
occurred_at    an ISO 8601 date/time; with an offset (``Z``, ``+02:00``) it is that instant,
               without one it is read in the import's time zone; stored in UTC
user_id        trimmed; empty is null
value          empty is null, else a finite number (``12.5``, ``-3``, ``1e3``)
properties     empty is null, else a JSON object (``{"plan": "pro"}``), stored as given
=============  ==========================================================================

Typed Parquet columns are taken as they are where they fit (timestamps with a zone, naive
timestamps read in the import's zone, numbers for ``value``, structs/maps as JSON objects);
anything else is read as text by the rules above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keepwell.errors import ImportFileError
from keepwell.events.duck import ident, literal
from keepwell.events.schema import DUCKDB_TYPES
from keepwell.events.source import FILE, ROW, Source, SourceColumn
from keepwell.imports.mapping import ColumnMapping
from keepwell.imports.schemas import EVENTS

KNOWN_TABLE = "keepwell_known_customers"
REJECT_COLUMNS = ("row", "field", "reason", "file")

_TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE")
_NUMBER_TYPES = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
    "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE",
)  # fmt: skip


@dataclass
class FieldCheck:
    """One store column: its value, when it is bad, and why (first matching reason).

    ``bad`` and ``reasons`` are written over ``{v}`` (the value) and ``{t}`` (the source text),
    which the plan fills with column names of an inner query so each is computed once.
    """

    name: str
    value: str
    text: str
    bad: list[str] = field(default_factory=list)
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (condition, reason)
    late: list[str] = field(default_factory=list)  # bad, but checked on the written files

    @property
    def v(self) -> str:
        return ident(f"keepwell_v_{self.name}")

    @property
    def t(self) -> str:
        return ident(f"keepwell_t_{self.name}")

    @property
    def filters_on_text(self) -> bool:
        """Whether the bad conditions need the source text besides the value."""
        return any("{t}" in b for b in self.bad)

    def _fill(self, sql: str) -> str:
        return sql.replace("{v}", self.v).replace("{t}", self.t)

    def bad_sql(self, *, late: bool = True) -> str:
        conditions = self.bad + self.late if late else self.bad
        return " OR ".join(f"({self._fill(b)})" for b in conditions) or "false"

    def reason_sql(self) -> str:
        whens = " ".join(
            f"WHEN {self._fill(cond)} THEN {literal(text)}" for cond, text in self.reasons
        )
        return f"CASE {whens} END"


@dataclass(frozen=True)
class Plan:
    """The SQL of one import.

    ``good`` selects the rows that pass every check but the known-customer one (which the
    importer applies to the written files); ``rejects`` selects every rejected row with its
    number, first failing field, reasons and original columns.
    """

    good: str
    rejects: str
    ignored: tuple[str, ...]


def _text(expr: str, kind: str) -> str:
    return expr if kind == "VARCHAR" else f"CAST({expr} AS VARCHAR)"


def _translate(expr: str, values: Mapping[str, str]) -> str:
    whens = " ".join(f"WHEN {literal(a)} THEN {literal(b)}" for a, b in values.items())
    return f"(CASE {expr} {whens} ELSE {expr} END)"


EMPTY = "{v} IS NULL OR {v} = ''"


def _strip(text: str) -> str:
    """``trim(text)``, computed only for values that start or end with a space (faster)."""
    return (
        f"CASE WHEN starts_with({text}, ' ') OR ends_with({text}, ' ') "
        f"THEN trim({text}) ELSE {text} END"
    )


def _check(name: str, expr: str, kind: str, *, known: bool) -> FieldCheck:
    """The check of store column ``name`` whose source is ``expr`` of DuckDB type ``kind``."""
    text = _text(expr, kind)
    if name in ("customer_id", "event"):
        check = FieldCheck(name, _strip(text), text, [EMPTY], [(EMPTY, "is empty")])
        if name == "event":
            limit = EVENTS.field("event").max_length or 200
            # bytes >= characters: count characters only for long byte strings
            check.bad.append(f"strlen({{v}}) > {limit} AND length({{v}}) > {limit}")
            check.reasons.append(("true", f"is longer than {limit} characters"))
        if name == "customer_id" and known:
            # per row this probe costs as much as parsing the CSV, so the good rows are written
            # first and their distinct customer ids checked afterwards (see the importer)
            check.late.append(
                f"{{v}} IS NOT NULL AND NOT ({{v}} IN (SELECT id FROM {KNOWN_TABLE}))"
            )
            check.reasons.append(("true", "is not a known customer id (import customers first)"))
        return check
    if name == "user_id":
        return FieldCheck(name, f"nullif({_strip(text)}, '')", text)
    if name == "occurred_at":
        if kind == "TIMESTAMP WITH TIME ZONE" or kind.startswith(_TIMESTAMP_TYPES):
            v = expr if kind == "TIMESTAMP WITH TIME ZONE" else f"CAST({expr} AS TIMESTAMPTZ)"
            return FieldCheck(name, v, text, ["{v} IS NULL"], [("true", "is empty")])
        return FieldCheck(
            name,
            f"try_cast({text} AS TIMESTAMPTZ)",
            text,
            ["{v} IS NULL"],
            [
                ("{t} IS NULL OR trim({t}) = ''", "is empty"),
                ("true", "is not a date/time (expected ISO 8601, e.g. 2026-03-01T09:30:00Z)"),
            ],
        )
    if name == "value":
        if kind in _NUMBER_TYPES or kind.startswith("DECIMAL"):
            return FieldCheck(
                name,
                f"CAST({expr} AS DOUBLE)",
                text,
                ["{v} IS NOT NULL AND NOT isfinite({v})"],
                [("true", "is not a finite number")],
            )
        return FieldCheck(
            name,
            f"try_cast({text} AS DOUBLE)",
            text,
            [  # CASE: trim only the few cells that are not numbers
                "CASE WHEN {v} IS NULL AND {t} IS NOT NULL THEN trim({t}) <> '' ELSE false END",
                "{v} IS NOT NULL AND NOT isfinite({v})",
            ],
            [("true", "is not a number (expected e.g. 12.5)")],
        )
    if name == "properties":
        if kind.startswith(("STRUCT", "MAP")):
            return FieldCheck(name, f"CAST(to_json({expr}) AS VARCHAR)", text)
        # valid JSON that starts with "{" is an object; stored as given, blank is null (the
        # CASEs touch only the rare cells that do not start with "{")
        value = f"CASE WHEN left({text}, 1) = '{{' THEN {text} ELSE nullif(trim({text}), '') END"
        return FieldCheck(
            name,
            value,
            text,
            [
                "CASE WHEN {v} IS NULL THEN false WHEN left({v}, 1) = '{' THEN NOT json_valid({v}) "
                "ELSE NOT (json_valid({v}) AND left(ltrim({v}), 1) = '{') END"
            ],
            [("true", 'is not a JSON object (expected e.g. {"plan": "pro"})')],
        )
    raise AssertionError(name)  # pragma: no cover - EVENTS has no other fields


def plan_import(source: Source, mapping: ColumnMapping | None, *, known: bool) -> Plan:
    """Build the import's SQL for ``source`` renamed by ``mapping``.

    Raises:
        ImportFileError: a required field has no column (naming it and the expected columns),
            the mapping names a missing column, or two columns map to the same field.
    """
    mapping = mapping or ColumnMapping()
    renamed = mapping.rename([c.name for c in source.columns])
    by_target: dict[str, SourceColumn] = {}
    for column in source.columns:
        target = renamed[column.name]
        if target in by_target:
            raise ImportFileError(
                f"columns {by_target[target].name!r} and {column.name!r} both give field "
                f"{target!r}",
                hint="drop one of them or map only one with --map",
            )
        by_target[target] = column
    fields = [f.name for f in EVENTS.fields]
    missing = [f for f in EVENTS.required if f not in by_target and f not in mapping.defaults]
    if missing:
        found = [c.name for c in source.columns]
        raise ImportFileError(
            f"{source.path.name}: missing required column(s) {missing}; the file has {found}",
            expected=f"columns {fields} (required: {list(EVENTS.required)})",
            hint="rename the columns or map them, e.g. --map customer_id='Customer ID'",
        )
    checks: list[FieldCheck] = []
    for name in fields:
        column = by_target.get(name)
        if column is not None:
            expr, kind = column.sql, column.type
        elif name in mapping.defaults:
            expr, kind = literal(mapping.defaults[name]), "VARCHAR"
        else:
            checks.append(FieldCheck(name, f"CAST(NULL AS {DUCKDB_TYPES[name]})", "NULL"))
            continue
        values = mapping.values.get(name)
        if values:
            expr, kind = _translate(_text(expr, kind), values), "VARCHAR"
        checks.append(_check(name, expr, kind, known=known))
    ignored = tuple(c.name for c in source.columns if renamed[c.name] not in fields)

    # inner query: each value (and the source text it came from) computed once
    inner = ", ".join(
        f"{c.value} AS {c.v}" + (f", {c.text} AS {c.t}" if c.filters_on_text else "")
        for c in checks
    )
    outer = ", ".join(f"{c.v} AS {ident(c.name)}" for c in checks)
    early = " OR ".join(f"({c.bad_sql(late=False)})" for c in checks if c.bad) or "false"
    good = f"SELECT {outer} FROM (SELECT {inner} FROM {source.relation}) WHERE NOT ({early})"

    # rejects: which field failed first, why, the other failures, the original columns
    flagged = [(c, f"({c.bad_sql()})") for c in checks if c.bad or c.late]
    bad = " OR ".join(b for _, b in flagged) or "false"
    first_field = " ".join(f"WHEN {b} THEN {literal(c.name)}" for c, b in flagged)
    first_reason = " ".join(f"WHEN {b} THEN {c.reason_sql()}" for c, b in flagged)
    first_value = " ".join(f"WHEN {b} THEN {c.t}" for c, b in flagged)
    also = []
    for i, (c, b) in enumerate(flagged):
        earlier = " OR ".join(e for _, e in flagged[:i])
        if earlier:
            also.append(
                f"CASE WHEN {b} AND ({earlier}) THEN {literal(c.name + ': ')} || "
                f"{c.reason_sql()} END"
            )
    also_sql = f"concat_ws('; ', {', '.join(also)})" if also else "''"
    reason = (
        f"coalesce((CASE {first_reason} END) || CASE WHEN {also_sql} <> '' "
        f"THEN ' (also ' || {also_sql} || ')' ELSE '' END, 'could not be checked')"
    )
    headers: list[str] = []
    originals = []
    for column in source.columns:
        header = column.name
        while header in REJECT_COLUMNS or header in headers:
            header += "_original"
        headers.append(header)
        originals.append(f"{_text(column.sql, column.type)} AS {ident(header)}")
    file_sql = f"{FILE} AS file, " if source.multi_file else ""
    every = ", ".join(f"{c.value} AS {c.v}, {c.text} AS {c.t}" for c in checks)
    rejects = (
        f"SELECT {ROW} AS row, CASE {first_field} END AS field, {reason} AS reason, "
        f"CASE {first_value} END AS keepwell_value, {file_sql}"
        f"{', '.join(ident(h) for h in headers)} "
        f"FROM (SELECT {ROW}, {FILE + ', ' if source.multi_file else ''}{every}, "
        f"{', '.join(originals)} FROM {source.numbered}) WHERE ({bad}) IS NOT FALSE"
    )
    return Plan(good=good, rejects=rejects, ignored=ignored)
