"""Typed reads of a custom attribute (``customers.attributes``), alike on SQLite and PostgreSQL.

Each construct compiles per dialect with the key as a bound parameter:

* :class:`AttrText` -- the value when it is a JSON string, else NULL;
* :class:`AttrNumber` -- the value as a float when it is a JSON number or a string holding a
  plain decimal number (``-?[0-9]+(.[0-9]+)?``, as imports store them), else NULL;
* :class:`AttrBool` -- the value when it is JSON ``true``/``false``, else NULL;
* :class:`AttrType` -- the JSON type name ('null' for JSON null), NULL when the key is absent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Float, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

# SQLite has no regular expressions: these GLOB tests together equal ^-?[0-9]+(\.[0-9]+)?$.
_SQLITE_DECIMAL = (
    "({v} NOT GLOB '*[^0-9.-]*' AND {v} GLOB '*[0-9]*' AND {v} NOT GLOB '?*-*'"
    " AND {v} NOT GLOB '*.*.*' AND {v} NOT GLOB '*.' AND {v} NOT GLOB '.*'"
    " AND {v} NOT GLOB '-.*')"
)
_PG_DECIMAL = "'^-?[0-9]+(\\.[0-9]+)?$'"


class _Attr(FunctionElement[Any]):
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any], key: str) -> None:
        self.key_name = key
        super().__init__(column, bindparam(None, key, type_=String(), unique=True))


class AttrText(_Attr):
    type = String()
    name = "attr_text"
    inherit_cache = True


class AttrNumber(_Attr):
    type = Float()
    name = "attr_number"
    inherit_cache = True


class AttrBool(_Attr):
    type = Boolean()
    name = "attr_bool"
    inherit_cache = True


class AttrType(_Attr):
    type = String()
    name = "attr_type"
    inherit_cache = True


def _parts(element: _Attr, compiler, **kw) -> tuple[str, str]:
    column, key = list(element.clauses)
    return compiler.process(column, **kw), compiler.process(key, **kw)


def _sqlite_path(compiler, key: str, **kw) -> str:
    # '$."key"' built in SQL from the bound key (keys are identifiers: no quotes inside).
    return f"('$.\"' || {key} || '\"')"


@compiles(AttrText, "sqlite")
def _text_sqlite(element, compiler, **kw):
    col, key = _parts(element, compiler, **kw)
    path = _sqlite_path(compiler, key)
    return f"(CASE WHEN json_type({col}, {path}) = 'text' THEN json_extract({col}, {path}) END)"


@compiles(AttrText, "postgresql")
def _text_pg(element, compiler, **kw):
    col, key = _parts(element, compiler, **kw)
    return f"(CASE WHEN jsonb_typeof({col} -> {key}) = 'string' THEN {col} ->> {key} END)"


@compiles(AttrNumber, "sqlite")
def _number_sqlite(element, compiler, **kw):
    col, key = _parts(element, compiler, **kw)
    path = _sqlite_path(compiler, key)
    value = f"json_extract({col}, {path})"
    return (
        f"(CASE WHEN json_type({col}, {path}) IN ('integer', 'real') THEN CAST({value} AS REAL)"
        f" WHEN json_type({col}, {path}) = 'text' AND {_SQLITE_DECIMAL.format(v=value)}"
        f" THEN CAST({value} AS REAL) END)"
    )


@compiles(AttrNumber, "postgresql")
def _number_pg(element, compiler, **kw):
    col, key = _parts(element, compiler, **kw)
    kind = f"jsonb_typeof({col} -> {key})"
    value = f"({col} ->> {key})"
    return (
        f"(CASE WHEN {kind} = 'number' THEN CAST({value} AS DOUBLE PRECISION)"
        f" WHEN {kind} = 'string' AND {value} ~ {_PG_DECIMAL}"
        f" THEN CAST({value} AS DOUBLE PRECISION) END)"
    )


@compiles(AttrBool, "sqlite")
def _bool_sqlite(element, compiler, **kw):
    col, key = _parts(element, compiler, **kw)
    path = _sqlite_path(compiler, key)
    kind = f"json_type({col}, {path})"
    return f"(CASE WHEN {kind} = 'true' THEN 1 WHEN {kind} = 'false' THEN 0 END)"


@compiles(AttrBool, "postgresql")
def _bool_pg(element, compiler, **kw):
    col, key = _parts(element, compiler, **kw)
    return (
        f"(CASE WHEN jsonb_typeof({col} -> {key}) = 'boolean'"
        f" THEN CAST({col} ->> {key} AS BOOLEAN) END)"
    )


@compiles(AttrType, "sqlite")
def _type_sqlite(element, compiler, **kw):
    col, key = _parts(element, compiler, **kw)
    return f"json_type({col}, {_sqlite_path(compiler, key)})"


@compiles(AttrType, "postgresql")
def _type_pg(element, compiler, **kw):
    col, key = _parts(element, compiler, **kw)
    return f"jsonb_typeof({col} -> {key})"
