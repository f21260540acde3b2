"""Batch event ingestion over HTTP: parse a JSON array or JSON lines, check every row, append.

A row is an object with the event store's columns (:mod:`keepwell.events.schema`)::

    {"customer_id": "cus_1", "event": "login", "occurred_at": "2026-03-01T09:30:00Z",
     "user_id": "u_7", "value": 1.5, "properties": {"plan": "pro"}}

``customer_id`` (an existing customer's external id), ``event`` and ``occurred_at`` (ISO 8601
with a zone offset or ``Z``: keepwell never guesses a zone) are required; ``user_id`` (string),
``value`` (number) and ``properties`` (object) are optional. Any bad row rejects the whole batch
(nothing is written) and every problem is reported with its 1-based row number.

Speed: no ORM and no dict per row. msgspec decodes and type-checks a clean body straight into
small structs, whose columns Arrow converts and checks at once (only a batch with a problem is
decoded again as plain JSON and walked row by row, to name each problem);
customers are checked in one query (the ids as one array parameter); the table goes to
:meth:`EventStore.append` in one atomic commit. An ``Idempotency-Key`` becomes the store's
batch key, so a retried request is written once.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import String, bindparam, exists, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.errors import InvalidInput
from keepwell.events.schema import COLUMNS, SCHEMA
from keepwell.events.store import AppendResult, EventStore

__all__ = [
    "JSON_LINES_TYPES",
    "MAX_ERRORS",
    "MAX_ROWS",
    "InvalidRows",
    "append_events",
    "batch_key_for",
    "parse_events",
]

MAX_ROWS = 1_000_000
"""Most rows one request may carry (split bigger uploads)."""
MAX_ERRORS = 100
"""Most row problems listed in one answer (the count covers all)."""
MAX_TEXT = 1000
"""Longest customer_id, event or user_id accepted."""
JSON_LINES_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/jsonlines", "application/json-lines"}
)
_ALLOWED = frozenset(COLUMNS)
_CHUNK = 5000


class InvalidRows(InvalidInput):
    """Raised when rows of a batch are bad; ``errors`` lists ``{"row", "field", "message"}``
    (at most :data:`MAX_ERRORS`), ``total`` counts every problem."""

    def __init__(self, errors: list[dict[str, Any]], total: int) -> None:
        first = errors[0] if errors else {}
        message = f"{total} problem(s) in the batch; nothing was written"
        if first:
            message += f" (first: row {first.get('row')}: {first.get('message')})"
        super().__init__(message)
        self.errors = errors
        self.total = total


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.total = 0

    def add(self, row: int, field_name: str | None, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_ERRORS:
            entry: dict[str, Any] = {"row": row}
            if field_name is not None:
                entry["field"] = field_name
            entry["message"] = message
            self.items.append(entry)

    def raise_if_any(self) -> None:
        if self.total:
            raise InvalidRows(sorted(self.items, key=lambda e: e["row"]), self.total)


def _rows(body: bytes, *, json_lines: bool, errors: _Errors) -> list[Any]:
    if not json_lines:
        try:
            data = _ANY.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
        if not isinstance(data, list):
            raise InvalidInput(
                "the body must be a JSON array of event objects",
                field="body",
                expected="[{...}, ...] or JSON lines with Content-Type application/x-ndjson",
            )
        return data
    rows: list[Any] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            rows.append(None)  # keeps line numbers; blank lines are skipped below
            continue
        try:
            rows.append(_ANY.decode(line))
        except msgspec.DecodeError as exc:
            errors.add(number, None, f"not valid JSON: {exc}")
            rows.append(None)
    return rows


class _Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One row as the fast path decodes it: msgspec checks the fields and their JSON types
    (no unknown field, required ones present, ``value`` a number but not ``true``)."""

    customer_id: str
    event: str
    occurred_at: str
    user_id: str | None = None
    value: float | None = None
    properties: dict[str, Any] | None = None


_ANY = msgspec.json.Decoder()
_EVENTS = msgspec.json.Decoder(list[_Event])
_EVENT = msgspec.json.Decoder(_Event)
_ENCODER = msgspec.json.Encoder()


def _fast_events(body: bytes, *, json_lines: bool) -> list[_Event] | None:
    """Every row decoded and typed by msgspec in one go; None if any row does not fit (then
    the careful path names each problem). JSON lines are decoded one line at a time."""
    try:
        if not json_lines:
            return _EVENTS.decode(body)
        decode = _EVENT.decode
        return [decode(line) for line in body.splitlines() if line.strip()]
    except msgspec.DecodeError:  # also ValidationError, its subclass
        return None


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def _too_long(column: pa.Array) -> bool:
    return column.null_count < len(column) and pc.max(pc.utf8_length(column)).as_py() > MAX_TEXT


def _fast_table(events: list[_Event]) -> pa.Table | None:
    """The table when every row is clean (the usual case), its columns built and checked at
    once; None when any row needs a closer look (then the row-by-row path names each problem).
    Accepts exactly what the row-by-row checks accept."""
    customers = [e.customer_id for e in events]
    names = [e.event for e in events]
    if not (all(map(str.strip, customers)) and all(map(str.strip, names))):
        return None  # a blank customer_id or event
    customer = pa.array(customers, pa.string())
    event = pa.array(names, pa.string())
    occurred = pa.array([e.occurred_at for e in events], pa.string())
    user = pa.array([e.user_id for e in events], pa.string())
    value = pa.array([e.value for e in events], pa.float64())
    if _too_long(customer) or _too_long(event) or _too_long(user):
        return None
    if _any(pc.invert(pc.is_finite(value))):
        return None
    lengths = pc.utf8_length(occurred)
    if _any(pc.less(lengths, 10)) or _any(pc.greater(lengths, 40)):
        return None
    try:
        occurred_at = pc.cast(occurred, SCHEMA.field("occurred_at").type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    encode = _ENCODER.encode
    properties = pa.array(
        [None if e.properties is None else encode(e.properties).decode() for e in events],
        pa.string(),
    )
    return pa.table(
        {
            "customer_id": customer,
            "event": event,
            "occurred_at": occurred_at,
            "user_id": user,
            "value": value,
            "properties": properties,
        },
        schema=SCHEMA,
    )


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing creates ~6 objects per row and none of them
    forms a cycle, yet each allocation burst would trigger collections (2x slower measured)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_events(body: bytes, *, json_lines: bool) -> pa.Table:
    """Check every row of ``body`` and return them as an Arrow table of the store's schema.

    Row numbers are 1-based: the position in the array, or the line number for JSON lines
    (blank lines are skipped but counted).

    Raises:
        InvalidRows: any bad row (each problem names row, field and what was expected).
        InvalidInput: the body as a whole is unusable (not JSON, not an array, too many rows).
    """
    with _no_gc():
        return _parse(body, json_lines=json_lines)


def _parse(body: bytes, *, json_lines: bool) -> pa.Table:
    events = _fast_events(body, json_lines=json_lines)
    if events is not None:
        _check_count(len(events))
        table = _fast_table(events)
        if table is not None:
            return table
        del events
    errors = _Errors()
    rows = _rows(body, json_lines=json_lines, errors=errors)
    _check_count(len(rows))
    numbers: list[int] = []
    customers: list[str] = []
    events: list[str] = []
    times: list[Any] = []
    users: list[str | None] = []
    values: list[float | None] = []
    props: list[str | None] = []
    for number, row in enumerate(rows, start=1):
        if row is None and json_lines:
            continue
        if type(row) is not dict:
            errors.add(number, None, "each event must be a JSON object")
            continue
        if not row.keys() <= _ALLOWED:
            unknown = sorted(set(row) - _ALLOWED)
            errors.add(number, unknown[0], f"unknown field(s) {unknown}; known: {list(COLUMNS)}")
            continue
        ok = True
        customer = row.get("customer_id")
        if type(customer) is not str or not customer.strip() or len(customer) > MAX_TEXT:
            errors.add(number, "customer_id", "required: a non-empty string (external id)")
            ok = False
        event = row.get("event")
        if type(event) is not str or not event.strip() or len(event) > MAX_TEXT:
            errors.add(number, "event", "required: a non-empty string, e.g. 'login'")
            ok = False
        occurred = row.get("occurred_at")
        if type(occurred) is not str or not 10 <= len(occurred) <= 40:
            errors.add(number, "occurred_at", "required: ISO 8601 text with a zone, e.g. ...Z")
            ok = False
        user = row.get("user_id")
        if user is not None and (type(user) is not str or len(user) > MAX_TEXT):
            errors.add(number, "user_id", "must be a string or null")
            ok = False
        value = row.get("value")
        if value is not None and (type(value) not in (int, float) or not math.isfinite(value)):
            errors.add(number, "value", "must be a finite number or null")
            ok = False
        prop = row.get("properties")
        if prop is not None and type(prop) is not dict:
            errors.add(number, "properties", "must be a JSON object or null")
            ok = False
        if not ok:
            continue
        numbers.append(number)
        customers.append(customer)
        events.append(event)
        times.append(occurred)
        users.append(user)
        values.append(None if value is None else float(value))
        props.append(None if prop is None else _ENCODER.encode(prop).decode())
    occurred_at = _timestamps(times, numbers, errors)
    errors.raise_if_any()
    return pa.table(
        {
            "customer_id": pa.array(customers, pa.string()),
            "event": pa.array(events, pa.string()),
            "occurred_at": occurred_at,
            "user_id": pa.array(users, pa.string()),
            "value": pa.array(values, pa.float64()),
            "properties": pa.array(props, pa.string()),
        },
        schema=SCHEMA,
    )


def _check_count(rows: int) -> None:
    if rows > MAX_ROWS:
        raise InvalidInput(f"{rows:,} rows in one request", expected=f"at most {MAX_ROWS:,}")


def _timestamps(texts: list[str], numbers: list[int], errors: _Errors) -> pa.Array:
    kind = SCHEMA.field("occurred_at").type
    strings = pa.array(texts, pa.string())
    try:
        return pc.cast(strings, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Slow path, only for bad input: find which rows do not parse.
    for number, text in zip(numbers, texts, strict=True):
        try:
            pc.cast(pa.array([text], pa.string()), kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            errors.add(
                number,
                "occurred_at",
                f"{text!r} is not an ISO 8601 time with a zone (e.g. 2026-03-01T09:30:00Z)",
            )
    return pa.array([None] * len(texts), kind)


def unknown_customers(*, db_session: Session, external_ids: Iterable[str]) -> set[str]:
    """Which of ``external_ids`` name no customer.

    One query whatever the count, answering only the unknown ids: they travel as one
    parameter (a JSON array read by ``json_each`` on SQLite, a text array on PostgreSQL) and
    each is looked up in the unique index (binding 10,000 separate parameters and reading back
    every known id took longer than parsing the batch). Other databases: one query per 5,000.
    """
    wanted = set(external_ids)
    if not wanted:
        return set()
    dialect = db_session.get_bind().dialect.name
    column = Customer.__table__.c.external_id
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            ids = func.json_each(bindparam("ids", type_=String)).table_valued("value")
            value: Any = _ENCODER.encode(list(wanted)).decode()
        else:
            ids = func.unnest(bindparam("ids", type_=ARRAY(String)))
            ids = ids.table_valued("value").render_derived()
            value = list(wanted)
        query = select(ids.c.value).where(~exists().where(column == ids.c.value))
        return set(db_session.execute(query, {"ids": value}).scalars())
    known: set[str] = set()
    listed = list(wanted)
    for start in range(0, len(listed), _CHUNK):
        chunk = listed[start : start + _CHUNK]
        known.update(db_session.execute(select(column).where(column.in_(chunk))).scalars())
    return wanted - known


def batch_key_for(idempotency_key: str) -> str:
    """The event store's batch key for an HTTP ``Idempotency-Key`` (hashed: any text is safe)."""
    return "http:" + hashlib.sha256(idempotency_key.encode()).hexdigest()


def append_events(
    *,
    db_session: Session,
    store: EventStore,
    body: bytes,
    json_lines: bool,
    idempotency_key: str | None = None,
) -> tuple[int, AppendResult]:
    """Parse, check (also that every customer exists) and append a batch in one commit.

    Returns the number of rows written and the store's result (``skipped``, with 0 rows, when
    the idempotency key was used before: nothing is written again).

    The key is looked up once, by :meth:`EventStore.append` (opening the Delta log costs about
    as much as checking the customers, so it is not looked up before parsing too); a retry whose
    body no longer passes the checks (say a customer was deleted since) is still answered
    ``skipped`` when its key was committed.
    """
    key = batch_key_for(idempotency_key) if idempotency_key else None
    try:
        table = _checked_table(db_session=db_session, body=body, json_lines=json_lines)
    except InvalidInput:
        if key is not None and store.has_batch(key):
            return 0, AppendResult(
                rows=0, files=0, version=store.version(), skipped=True, batch_key=key
            )
        raise
    result = store.append(table, batch_key=key)
    return (0 if result.skipped else table.num_rows), result


def _checked_table(*, db_session: Session, body: bytes, json_lines: bool) -> pa.Table:
    table = parse_events(body, json_lines=json_lines)
    ids = table.column("customer_id")
    unknown = unknown_customers(db_session=db_session, external_ids=pc.unique(ids).to_pylist())
    if unknown:
        errors = _Errors()
        mask = pc.is_in(ids, value_set=pa.array(sorted(unknown), pa.string()))
        positions = pc.indices_nonzero(mask).to_pylist()
        rows_of = _row_numbers(body, json_lines=json_lines, count=table.num_rows)
        for position in positions:
            errors.add(
                rows_of[position],
                "customer_id",
                f"no customer with external id {ids[position].as_py()!r}",
            )
        errors.raise_if_any()
    if table.num_rows == 0:
        raise InvalidInput("the batch has no events", field="body", expected="at least one row")
    return table


def _row_numbers(body: bytes, *, json_lines: bool, count: int) -> list[int]:
    """Row number of each parsed row (JSON lines may skip blank lines)."""
    if not json_lines:
        return list(range(1, count + 1))
    return [n for n, line in enumerate(body.splitlines(), start=1) if line.strip()]
