"""Bulk reads and writes of the operational tables with SQLAlchemy Core, in chunks.

Upsert on ``external_id``: rows are compared with what is stored first, so only new and
changed rows are written (``INSERT ... ON CONFLICT (external_id) DO UPDATE``, the dialect's
own ``insert`` on SQLite and PostgreSQL); unchanged rows are not touched, so their
``updated_at`` stays. Everything runs in the caller's transaction and is only flushed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, String, Table, any_, bindparam, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from keepwell.customers.models import Tag, customer_tags
from keepwell.models import utcnow
from keepwell.users.models import Role, StaffUser

T = TypeVar("T")

WRITE_CHUNK = 2_000
"""Rows per INSERT ... ON CONFLICT statement (one progress step)."""

SELECT_CHUNK = 5_000
"""Keys per ``IN (...)`` lookup (well below SQLite's 32,766 bound parameters)."""


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Successive lists of at most ``size`` items (``itertools.batched`` from Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def dialect_insert(db_session: Session, table: Table) -> Insert:
    """``INSERT`` with ``ON CONFLICT`` support for the session's database."""
    name = db_session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upsert is not implemented for {name}")  # pragma: no cover


def _key_in(db_session: Session, key: ColumnElement[Any], keys: list[Any]) -> ColumnElement[bool]:
    """``key IN keys``; on PostgreSQL one array parameter (``= ANY(:keys)``), which is far
    cheaper to send than thousands of separate parameters."""
    if db_session.get_bind().dialect.name == "postgresql":
        return key == any_(bindparam("keys", keys, type_=postgresql.ARRAY(String())))
    return key.in_(keys)


def fetch_columns(
    db_session: Session,
    *,
    key: ColumnElement[Any],
    keys: Iterable[Any],
    columns: Sequence[ColumnElement[Any]],
) -> dict[Any, tuple[Any, ...]]:
    """Stored rows whose ``key`` is in ``keys``: key -> values of ``columns``."""
    found: dict[Any, tuple[Any, ...]] = {}
    for chunk in batched(keys, SELECT_CHUNK):
        statement = select(key, *columns).where(_key_in(db_session, key, chunk))
        for row in db_session.execute(statement).all():
            found[row[0]] = tuple(row[1:])
    return found


@dataclass
class Plan:
    """What an upsert will do with each record (indexes into the records list)."""

    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)


def plan(
    records: Sequence[dict[str, Any]],
    *,
    stored: dict[str, dict[str, Any]],
    compare: Sequence[str],
    also_changed: set[str] = frozenset(),  # type: ignore[assignment]
) -> Plan:
    """Sort records into new, changed (a compared column differs) and unchanged."""
    result = Plan()
    for i, record in enumerate(records):
        key = record["external_id"]
        before = stored.get(key)
        if before is None:
            result.new.append(i)
        elif key in also_changed or any(record[c] != before[c] for c in compare):
            result.changed.append(i)
        else:
            result.unchanged.append(i)
    return result


def write_chunk(db_session: Session, statement: Insert, chunk: list[dict[str, Any]]) -> None:
    """Execute one bulk upsert statement for ``chunk`` (one progress step)."""
    db_session.execute(statement, chunk)


def upsert(
    db_session: Session,
    *,
    table: Table,
    records: Sequence[dict[str, Any]],
    update: Sequence[str],
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """Insert ``records``, or update the ``update`` columns of those already stored.

    No ``RETURNING``: with it, bulk inserts run several times slower on PostgreSQL; callers
    that need the new ids select them by external id.
    """
    statement = dialect_insert(db_session, table)
    now = utcnow()
    set_ = {c: statement.excluded[c] for c in update if c != "external_id"}
    set_["updated_at"] = now
    statement = statement.on_conflict_do_update(index_elements=[table.c.external_id], set_=set_)
    for chunk in batched(records, WRITE_CHUNK):
        for record in chunk:  # explicit stamps: no per-row default call
            record["created_at"] = record["updated_at"] = now
        write_chunk(db_session, statement, chunk)
        if on_chunk:
            on_chunk(len(chunk))


def ensure_staff(db_session: Session, emails: Iterable[str]) -> tuple[dict[str, int], int]:
    """Staff users by lower-cased e-mail, creating missing ones (role csm, no password).

    Returns (e-mail -> staff user id, number created).
    """
    wanted: dict[str, str] = {}
    for email in emails:  # the first spelling in the file names a new user
        wanted.setdefault(email.lower(), email)
    table = StaffUser.__table__
    found = fetch_columns(
        db_session, key=func.lower(table.c.email), keys=wanted, columns=[table.c.id]
    )
    ids = {email: values[0] for email, values in found.items()}
    missing = [e for e in wanted if e not in ids]
    for chunk in batched(missing, WRITE_CHUNK):
        rows = [
            {"email": wanted[e], "name": wanted[e].split("@")[0], "role": Role.csm} for e in chunk
        ]
        result = db_session.execute(insert(table).returning(table.c.id, table.c.email), rows)
        for row_id, email in result:
            ids[email.lower()] = row_id
    return ids, len(missing)


def ensure_tags(db_session: Session, names: Iterable[str]) -> dict[str, int]:
    """Tag ids by name, creating missing tags."""
    table = Tag.__table__
    wanted = set(names)
    found = fetch_columns(db_session, key=table.c.name, keys=wanted, columns=[table.c.id])
    ids = {name: values[0] for name, values in found.items()}
    missing = sorted(wanted - set(ids))
    for chunk in batched(missing, WRITE_CHUNK):
        result = db_session.execute(
            insert(table).returning(table.c.id, table.c.name), [{"name": n} for n in chunk]
        )
        ids.update({name: row_id for row_id, name in result})
    return ids


def fetch_customer_tags(
    db_session: Session, customer_ids: Iterable[int]
) -> dict[int, dict[str, int]]:
    """Tags of each of ``customer_ids``: customer id -> {tag name: tag id} (none: absent)."""
    link, tags = customer_tags, Tag.__table__
    result: dict[int, dict[str, int]] = {}
    for chunk in batched(customer_ids, SELECT_CHUNK):
        statement = (
            select(link.c.customer_id, tags.c.name, tags.c.id)
            .join(tags, tags.c.id == link.c.tag_id)
            .where(link.c.customer_id.in_(chunk))
        )
        for customer_id, name, tag_id in db_session.execute(statement):
            result.setdefault(customer_id, {})[name] = tag_id
    return result


def set_customer_tags(
    db_session: Session, *, wanted: dict[int, set[str]], current: dict[int, dict[str, int]]
) -> None:
    """Make each customer in ``wanted`` carry exactly those tag names (creating tags)."""
    ids = ensure_tags(db_session, {name for names in wanted.values() for name in names})
    removed: list[dict[str, int]] = []
    added: list[dict[str, int]] = []
    for customer_id, names in wanted.items():
        before = current.get(customer_id, {})
        removed += [{"c": customer_id, "t": before[n]} for n in sorted(before.keys() - names)]
        added += [
            {"customer_id": customer_id, "tag_id": ids[n]} for n in sorted(names - before.keys())
        ]
    if removed:
        by_pair = delete(customer_tags).where(
            customer_tags.c.customer_id == bindparam("c"), customer_tags.c.tag_id == bindparam("t")
        )
        for chunk in batched(removed, WRITE_CHUNK):
            db_session.execute(by_pair, chunk)
    for chunk in batched(added, WRITE_CHUNK):
        db_session.execute(insert(customer_tags), chunk)
