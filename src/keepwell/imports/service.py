"""Import the operational tables from CSV/Parquet files: customers, subscriptions, invoices,
orders, surveys, tickets.

``import_file`` reads the file, maps and checks its columns, validates every row column-wise,
writes the rejected rows to a CSV file, then upserts the accepted rows on ``external_id`` and
records an :class:`~keepwell.imports.models.ImportRun`. It only flushes: the caller commits
once, or rolls back and leaves the store exactly as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.errors import ImportFileError, InvalidInput
from keepwell.imports import parse
from keepwell.imports.columns import Frame, column_names, prepare
from keepwell.imports.mapping import ColumnMapping
from keepwell.imports.models import ImportRun
from keepwell.imports.reader import read_table
from keepwell.imports.rejects import write_rejects
from keepwell.imports.schemas import SCHEMAS, ImportSchema
from keepwell.imports.summary import ImportSummary
from keepwell.imports.upsert import (
    Plan,
    ensure_staff,
    fetch_columns,
    fetch_customer_tags,
    plan,
    set_customer_tags,
    upsert,
)
from keepwell.imports.validate import TABLES, Options, Validated, validate
from keepwell.models import utcnow

__all__ = ["KINDS", "MAX_SUMMARY_REJECTS", "import_file", "known_customer_ids"]

KINDS: tuple[str, ...] = tuple(TABLES)
"""Kinds :func:`import_file` handles, in the order files should be imported."""

SLICE = 50_000
"""Accepted rows compared and written per step; bounds memory on very large files."""

MAX_SUMMARY_REJECTS = 1_000
"""Rejects kept in :attr:`ImportSummary.rejects`; the rejects file has all of them."""

Progress = Callable[[int, int], None]


def known_customer_ids(*, db_session: Session) -> list[str]:
    """The external ids of every stored customer (for the events import)."""
    return list(db_session.scalars(select(Customer.__table__.c.external_id)))


def _schema(kind: str) -> ImportSchema:
    if kind == "events":
        raise ImportFileError(
            "events are appended to the event store, not imported with import_file",
            hint="use `keepwell import events FILE`",
        )
    if kind not in KINDS:
        raise ImportFileError(
            f"unknown import kind {kind!r}", expected=f"one of {', '.join(KINDS)}"
        )
    return SCHEMAS[kind]


def _options(mapping: ColumnMapping | None, timezone: str, default_currency: str) -> Options:
    zone = (mapping.timezone if mapping else None) or timezone
    if not parse.is_time_zone(zone):
        raise InvalidInput(
            f"unknown time zone {zone!r}", field="timezone", expected="an IANA name, e.g. UTC"
        )
    if not parse.is_currency(default_currency):
        raise InvalidInput(
            f"unknown currency {default_currency!r}",
            field="currency",
            expected="an ISO 4217 code, e.g. USD",
        )
    return Options(timezone=zone, default_currency=default_currency.upper())


def import_file(
    *,
    db_session: Session,
    kind: str,
    path: Path,
    rejects_dir: Path,
    mapping: ColumnMapping | None = None,
    timezone: str = "UTC",
    default_currency: str = "USD",
    encoding: str = "utf-8",
    strict: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one file of ``kind`` into the operational store (flush only, no commit).

    Args:
        kind: one of :data:`KINDS`.
        path: a CSV (any of , ; tab | as delimiter; may be ``.gz``) or Parquet file.
        rejects_dir: where ``<kind>-<UTC timestamp>-rejects.csv`` goes when rows are rejected.
        mapping: column mapping for files that use other column names; its ``timezone``
            option, when set, replaces ``timezone``.
        timezone: IANA zone of timestamps written without an offset.
        default_currency: currency of amounts in rows that give none.
        encoding: text encoding of a CSV file.
        strict: raise :class:`InvalidInput` if any row is rejected, writing nothing.
        progress: called with (rows done, rows in file) as the import advances.

    Returns:
        The counts (``inserted + updated + unchanged + rejected == rows``), the first
        :data:`MAX_SUMMARY_REJECTS` rejects and the rejects file.

    Raises:
        ImportFileError: the file cannot be used (empty, undecodable, a required column
            missing, a mapping naming absent columns, unknown kind); nothing is written.
        InvalidInput: ``strict`` and some rows were rejected, or a bad option.
    """
    schema = _schema(kind)
    options = _options(mapping, timezone, default_currency)
    raw = read_table(Path(path), encoding=encoding, expected=", ".join(column_names(schema)))
    frame = prepare(raw, schema, mapping)
    db_session.flush()  # the caller's pending rows are visible to the lookups below
    validated = validate(db_session=db_session, frame=frame, options=options)

    total = raw.total_rows
    rejects = validated.problems.rejects()
    summary = ImportSummary(
        kind=kind,
        source=str(path),
        rows=total,
        rejected=total - len(validated),
        rejects=rejects[:MAX_SUMMARY_REJECTS],
    )
    summary.notes += _file_notes(frame)
    if rejects:
        summary.rejects_path = write_rejects(
            rejects_dir=Path(rejects_dir), kind=kind, raw=raw, rejects=rejects
        )
    if strict and rejects:
        shown = "; ".join(str(r) for r in rejects[:3])
        raise InvalidInput(
            f"{summary.rejected} of {total} row(s) rejected, nothing imported (strict): {shown}",
            hint=f"every reason is in {summary.rejects_path}",
        )

    done = summary.rejected

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        if progress:
            progress(done, total)

    advance(0)
    if kind == "customers":
        _write_customers(db_session, validated, summary, advance)
    else:
        update = sorted(validated.provided - {"external_id"})
        for positions in _slices(validated.positions):
            records = validated.records(positions)
            stored = _stored(db_session, validated.table, records, update)
            _apply(db_session, validated, summary, advance, records, stored, update)
    _record_run(db_session, summary, sha256=raw.sha256)
    db_session.flush()
    db_session.expire_all()  # ORM objects the caller holds see the new values
    summary.check()
    return summary


def _file_notes(frame: Frame) -> list[str]:
    notes = []
    if frame.ignored:
        notes.append(
            f"ignored column(s) that {frame.schema.kind} do not use: {', '.join(frame.ignored)}"
        )
    if frame.raw.total_rows == 0:
        notes.append("the file has a header but no data rows")
    return notes


def _stored(
    db_session: Session, table: Table, records: Sequence[dict[str, Any]], columns: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Stored rows for the records' external ids: external_id -> {column: value}, plus id."""
    names = ["id", *columns]
    found = fetch_columns(
        db_session,
        key=table.c.external_id,
        keys=[r["external_id"] for r in records],
        columns=[table.c[n] for n in names],
    )
    return {key: dict(zip(names, values, strict=True)) for key, values in found.items()}


def _slices(positions: np.ndarray) -> Iterator[np.ndarray]:
    """The accepted rows in slices of :data:`SLICE` (Python objects exist per slice only)."""
    for start in range(0, len(positions), SLICE):
        yield positions[start : start + SLICE]


def _apply(
    db_session: Session,
    validated: Validated,
    summary: ImportSummary,
    advance: Callable[[int], None],
    records: list[dict[str, Any]],
    stored: dict[str, dict[str, Any]],
    update: list[str],
    also_changed: frozenset[str] | set[str] = frozenset(),
) -> Plan:
    """Count, then write the new and changed records."""
    decided = plan(records, stored=stored, compare=update, also_changed=set(also_changed))
    summary.inserted += len(decided.new)
    summary.updated += len(decided.changed)
    summary.unchanged += len(decided.unchanged)
    advance(len(decided.unchanged))
    written = [records[i] for i in decided.new + decided.changed]
    upsert(db_session, table=validated.table, records=written, update=update, on_chunk=advance)
    return decided


def _owner_ids(
    db_session: Session, validated: Validated, summary: ImportSummary
) -> dict[str, int] | None:
    """Staff user id by lower-cased owner e-mail, creating missing users (None: no column)."""
    owners = validated.extras.get("owner_email")
    if owners is None:
        return None
    accepted = owners.take(pa.array(validated.positions, pa.int64())).drop_null()
    staff, created = ensure_staff(db_session, pc.unique(accepted).to_pylist())
    if created:
        summary.notes.append(f"created {created} staff user(s) (role csm) for owner_email")
    return staff


def _write_customers(
    db_session: Session,
    validated: Validated,
    summary: ImportSummary,
    advance: Callable[[int], None],
) -> None:
    """Customers also resolve owners (creating staff users), custom attributes and tags."""
    provided = set(validated.provided)
    staff = _owner_ids(db_session, validated, summary)
    if staff is not None:
        provided.add("owner_id")
    has_attributes = "attributes" in validated.extras
    if has_attributes:
        provided.add("attributes")
    has_tags = "tags" in validated.extras
    update = sorted(provided - {"external_id"})
    table = validated.table

    for positions in _slices(validated.positions):
        records = validated.records(positions)
        if staff is not None:
            owners = validated.extra("owner_email", positions) or []
            for record, owner in zip(records, owners, strict=True):
                record["owner_id"] = staff[owner.lower()] if owner else None
        stored = _stored(db_session, table, records, update)
        if has_attributes:
            given = validated.extra("attributes", positions) or []
            for record, attributes in zip(records, given, strict=True):
                before = stored.get(record["external_id"])
                record["attributes"] = _merge(before["attributes"] if before else None, attributes)
        if not has_tags:
            _apply(db_session, validated, summary, advance, records, stored, update)
            continue

        tags = _Tags.compare(db_session, records, stored, validated.extra("tags", positions))
        decided = _apply(
            db_session, validated, summary, advance, records, stored, update, tags.changed
        )
        tags.save(db_session, table, [records[i]["external_id"] for i in decided.new])


@dataclass
class _Tags:
    """The tags a slice of customers should carry, compared with what they carry."""

    wanted: dict[str, set[str]]  # external id -> tag names
    current: dict[int, dict[str, int]]  # customer id -> {tag name: tag id}
    stored_ids: dict[str, int]  # external id -> customer id, for stored customers
    changed: set[str]  # stored customers whose tags differ

    @classmethod
    def compare(
        cls,
        db_session: Session,
        records: list[dict[str, Any]],
        stored: dict[str, dict[str, Any]],
        tag_lists: list[Any] | None,
    ) -> _Tags:
        wanted = {
            r["external_id"]: {t for t in (names or []) if t}
            for r, names in zip(records, tag_lists or [], strict=True)
        }
        stored_ids = {key: row["id"] for key, row in stored.items()}
        current = fetch_customer_tags(db_session, stored_ids.values())
        changed = {k for k, i in stored_ids.items() if set(current.get(i, {})) != wanted[k]}
        return cls(wanted, current, stored_ids, changed)

    def save(self, db_session: Session, table: Table, new_keys: list[str]) -> None:
        """Tag the new customers and re-tag the changed ones (after their rows are written)."""
        ids = dict(self.stored_ids)
        found = fetch_columns(
            db_session, key=table.c.external_id, keys=new_keys, columns=[table.c.id]
        )
        ids.update({key: values[0] for key, values in found.items()})
        to_set = {
            ids[key]: names
            for key, names in self.wanted.items()
            if key in self.changed or (key not in self.stored_ids and names)
        }
        set_customer_tags(db_session, wanted=to_set, current=self.current)


def _merge(before: dict[str, Any] | None, given: dict[str, str | None]) -> dict[str, Any]:
    """Stored attributes updated by the file's: an empty cell removes the attribute."""
    merged = dict(before or {})
    for name, value in given.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _record_run(db_session: Session, summary: ImportSummary, *, sha256: str) -> None:
    run = ImportRun(
        kind=summary.kind,
        source=summary.source[-1024:],
        sha256=sha256,
        inserted=summary.inserted,
        updated=summary.updated,
        unchanged=summary.unchanged,
        rejected=summary.rejected,
        rejects_path=str(summary.rejects_path) if summary.rejects_path else None,
        finished_at=utcnow(),
    )
    db_session.add(run)


def replace_timezone(mapping: ColumnMapping | None, timezone: str | None) -> ColumnMapping | None:
    """``mapping`` with its time zone set to ``timezone`` (an explicit option wins)."""
    if timezone is None:
        return mapping
    return dataclasses.replace(mapping or ColumnMapping(), timezone=timezone)
