"""The event store's fixed schema, in Arrow, Delta and DuckDB terms.

============  ===========================  ========  ==========================================
column        Arrow type                   nullable  meaning
============  ===========================  ========  ==========================================
customer_id   string                       no        the customer's external id
event         string                       no        event name, e.g. ``login``
occurred_at   timestamp[us, tz=UTC]        no        when it happened (UTC instant)
user_id       string                       yes       which user of the customer did it
value         float64                      yes       a numeric value (amount, duration, count)
properties    string                       yes       a JSON object, as text
============  ===========================  ========  ==========================================
"""

from __future__ import annotations

import pyarrow as pa

from keepwell.errors import InvalidInput

SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("properties", pa.string()),
    ]
)
"""Arrow schema of the event store (also its Delta schema)."""

COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)
REQUIRED: tuple[str, ...] = tuple(f.name for f in SCHEMA if not f.nullable)

DUCKDB_TYPES: dict[str, str] = {
    "customer_id": "VARCHAR",
    "event": "VARCHAR",
    "occurred_at": "TIMESTAMPTZ",
    "user_id": "VARCHAR",
    "value": "DOUBLE",
    "properties": "VARCHAR",
}

DESCRIBED_TYPES: dict[str, str] = {
    c: "TIMESTAMP WITH TIME ZONE" if t == "TIMESTAMPTZ" else t for c, t in DUCKDB_TYPES.items()
}
"""The columns as DuckDB's ``DESCRIBE`` names them."""

_EXPECTED = {
    "customer_id": "string",
    "event": "string",
    "occurred_at": "timestamp with a time zone, e.g. timestamp[us, tz=UTC]",
    "user_id": "string",
    "value": "float64 (or an integer type)",
    "properties": "string holding a JSON object",
}


def typed_select(source: str = "") -> str:
    """``CAST(col AS type) AS col, ...`` for every column, optionally qualified by ``source``."""
    prefix = f"{source}." if source else ""
    return ", ".join(f'CAST({prefix}"{c}" AS {t}) AS "{c}"' for c, t in DUCKDB_TYPES.items())


def empty_select() -> str:
    """A row-less SELECT with the store's columns and types."""
    cols = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in DUCKDB_TYPES.items())
    return f"SELECT {cols} WHERE false"


def _compatible(name: str, kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_null(kind):
        return name not in REQUIRED
    if name == "occurred_at":
        return pa.types.is_timestamp(kind) and kind.tz is not None
    if name == "value":
        return pa.types.is_floating(kind) or pa.types.is_integer(kind)
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def check_schema(schema: pa.Schema) -> list[str]:
    """Check ``schema`` against the store's; return the optional columns it lacks.

    Column order does not matter; string, large_string and string_view are all strings; any
    timestamp unit is fine if it carries a zone; integers are accepted for ``value``.

    Raises:
        InvalidInput: a missing required column, an unknown column or an incompatible type.
    """
    names = list(schema.names)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"columns {duplicates} appear more than once")
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {unknown} in the event data", expected=f"columns {list(COLUMNS)}"
        )
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InvalidInput(
            f"missing required column(s) {missing} in the event data",
            expected=f"columns {list(COLUMNS)}",
        )
    for field in schema:
        if not _compatible(field.name, field.type):
            hint = None
            if field.name == "occurred_at" and pa.types.is_timestamp(field.type):
                hint = "attach the zone first, e.g. pyarrow.compute.assume_timezone(col, 'UTC')"
            raise InvalidInput(
                f"column has type {field.type}",
                field=field.name,
                expected=_EXPECTED[field.name],
                hint=hint,
            )
    return [c for c in COLUMNS if c not in names]
