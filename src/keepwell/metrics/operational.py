"""The operational tables metrics read, as Arrow, and a Parquet snapshot of them.

Reading them through the ORM costs a Python object per value (30 s for 100k customers and
640k invoices); here the driver's raw rows become Arrow columns, timestamps are parsed
vectorised, and the result is written once as Parquet under ``home/cache/operational``, keyed by
a fingerprint of the store (per table: row count, highest id, latest ``updated_at``). Reports
then open the Parquet files directly until the operational data changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Select, func, select

SNAPSHOT_FORMAT = 1  # bump when the snapshot's layout or reading rules change
KEEP_SNAPSHOTS = 2


def _queries() -> dict[str, Select]:
    from keepwell.billing.models import Invoice, Order, Subscription
    from keepwell.customers.models import Customer, Tag, customer_tags
    from keepwell.support.models import Ticket
    from keepwell.surveys.models import SurveyResponse
    from keepwell.users.models import StaffUser

    ext = Customer.external_id.label("customer_id")
    return {
        "customers": select(
            ext,
            Customer.signup_at,
            Customer.industry,
            Customer.country,
            Customer.status,
            StaffUser.email.label("owner"),
            Customer.attributes,
        ).outerjoin(StaffUser, Customer.owner_id == StaffUser.id),
        "customer_tags": select(ext, Tag.name.label("tag"))
        .join(customer_tags, customer_tags.c.customer_id == Customer.id)
        .join(Tag, Tag.id == customer_tags.c.tag_id),
        "subscriptions": select(
            ext,
            Subscription.plan,
            Subscription.mrr_minor,
            Subscription.currency,
            Subscription.started_at,
            Subscription.ended_at,
        )
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(Subscription.status != "trialing", Subscription.mrr_minor > 0),
        "invoices": select(
            ext,
            Invoice.amount_minor,
            Invoice.currency,
            Invoice.issued_at,
            Invoice.due_at,
            Invoice.paid_at,
            Invoice.status,
        ).join(Customer, Customer.id == Invoice.customer_id),
        "orders": select(
            ext, Order.ordered_at, Order.amount_minor, Order.currency, Order.category, Order.status
        ).join(Customer, Customer.id == Order.customer_id),
        "surveys": select(
            ext, SurveyResponse.kind, SurveyResponse.score, SurveyResponse.responded_at
        ).join(Customer, Customer.id == SurveyResponse.customer_id),
        "tickets": select(ext, Ticket.priority, Ticket.opened_at, Ticket.closed_at).join(
            Customer, Customer.id == Ticket.customer_id
        ),
    }


def _arrow_type(dtype: Any) -> pa.DataType:
    if dtype.is_timestamp():
        return pa.timestamp("us")
    if dtype.is_int64():
        return pa.int64()
    if dtype.is_float64():
        return pa.float64()
    return pa.string()


def _column(values: Sequence[Any], target: pa.DataType) -> pa.Array:
    """Raw driver values -> an Arrow column of ``target`` (timestamps naive UTC)."""
    if pa.types.is_timestamp(target):
        # SQLite gives 'YYYY-MM-DD HH:MM:SS.ffffff' text (UTC); PostgreSQL aware datetimes
        # (Arrow keeps the instant in UTC, so dropping the zone leaves UTC wall time).
        return pa.array(values).cast(target) if len(values) else pa.array([], type=target)
    if pa.types.is_string(target):
        texts = [None if v is None else str(getattr(v, "value", v)) for v in values]
        return pa.array(texts, type=target)
    return pa.array(values, type=target)


def _attributes(values: Sequence[Any]) -> dict[str, pa.Array]:
    """Custom attributes (JSON text or dicts) -> ``attr_<key>`` text columns."""
    dicts = [json.loads(v) if isinstance(v, str) else v for v in values]
    dicts = [d if isinstance(d, dict) else {} for d in dicts]
    keys: dict[str, None] = {}
    for d in dicts:
        keys.update(dict.fromkeys(d))
    return {
        f"attr_{k}": pa.array([None if d.get(k) is None else str(d[k]) for d in dicts], pa.string())
        for k in keys
    }


BATCH_ROWS = 200_000
"""Rows fetched from the driver at a time: memory stays bounded by a batch, not a table."""


def _batches(conn: Connection, name: str, query: Select) -> Iterator[pa.Table]:
    """Table ``name`` as Arrow tables of at most :data:`BATCH_ROWS` rows (at least one, maybe
    empty). Customers' ``attr_*`` columns are those of the batch's rows."""
    from keepwell.metrics.sources import SCHEMAS

    schema = SCHEMAS[name]
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.dbapi_connection.cursor()  # raw rows: no per-value processing
    try:
        cursor.execute(sql)
        keys = [d[0] for d in cursor.description]
        first = True
        while (rows := cursor.fetchmany(BATCH_ROWS)) or first:
            first = False
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
            by_name = dict(zip(keys, columns, strict=True))
            arrays = {col: _column(by_name[col], _arrow_type(t)) for col, t in schema.items()}
            if name == "customers":
                arrays.update(_attributes(by_name["attributes"]))
            yield pa.table(arrays)
    finally:
        cursor.close()


def _read(conn: Connection, name: str, query: Select) -> pa.Table:
    return pa.concat_tables(list(_batches(conn, name, query)), promote_options="default")


def read_tables(conn: Connection) -> dict[str, pa.Table]:
    """Every operational table metrics read, as Arrow tables in the shape of
    :data:`keepwell.metrics.sources.SCHEMAS` (customers also get ``attr_*`` columns)."""
    return {name: _read(conn, name, query) for name, query in _queries().items()}


def write_parquet(conn: Connection, directory: Path) -> None:
    """Every operational table as ``<directory>/<name>.parquet``, streamed batch by batch
    (customers, whose attribute columns are known only at the end, in one piece)."""
    for name, query in _queries().items():
        path = directory / f"{name}.parquet"
        if name == "customers":
            pq.write_table(_read(conn, name, query), path, compression="zstd")
            continue
        writer = None
        try:
            for batch in _batches(conn, name, query):
                writer = writer or pq.ParquetWriter(path, batch.schema, compression="zstd")
                writer.write_table(batch)
        finally:
            if writer is not None:
                writer.close()


MEMO_KEY = "keepwell.fingerprint"


def _sqlite_marker(conn: Connection) -> tuple[int, int] | None:
    """On SQLite, (``PRAGMA data_version``, ``total_changes``) of this DBAPI connection: both
    unchanged means nobody -- another connection or this one -- committed since they were read."""
    if conn.dialect.name != "sqlite":
        return None
    dbapi = conn.connection.dbapi_connection
    (version,) = dbapi.execute("PRAGMA data_version").fetchone()
    return int(version), int(dbapi.total_changes)


def fingerprint(conn: Connection) -> str:
    """A digest that changes whenever a table metrics read gains, loses or changes a row.

    Per table: row count, highest id and latest ``updated_at`` (every write path, imports
    included, stamps it); for the customer-tag links: count, id sums and latest link time; for
    staff, their ids and e-mails (a login stamps ``updated_at`` but changes nothing reports read).

    On SQLite the digest is remembered per pooled connection with :func:`_sqlite_marker` and
    reused while the database did not change (the counts cost ~0.15 s at 1M customers).
    """
    marker = _sqlite_marker(conn)
    memo = conn.connection.info.get(MEMO_KEY)
    if marker is not None and memo is not None and memo[0] == marker:
        return memo[1]
    digest = _fingerprint(conn)
    if marker is not None:
        conn.connection.info[MEMO_KEY] = (marker, digest)
    return digest


def _fingerprint(conn: Connection) -> str:
    from keepwell.billing.models import Invoice, Order, Subscription
    from keepwell.customers.models import Customer, Tag, customer_tags
    from keepwell.support.models import Ticket
    from keepwell.surveys.models import SurveyResponse
    from keepwell.users.models import StaffUser

    parts: list[Any] = [SNAPSHOT_FORMAT, conn.engine.url.render_as_string(hide_password=True)]
    # staff: only who they are (the owner e-mail metrics read); a login stamps updated_at
    parts.append(conn.execute(select(StaffUser.id, StaffUser.email).order_by(StaffUser.id)).all())
    for model in (Customer, Tag, Subscription, Invoice, Order, SurveyResponse, Ticket):
        # three scalar subqueries: each max() is an index lookup (together in one SELECT,
        # SQLite would scan for them), the count reads the smallest index
        parts.append(
            conn.execute(
                select(
                    select(func.count()).select_from(model).scalar_subquery(),
                    select(func.max(model.id)).scalar_subquery(),
                    select(func.max(model.updated_at)).scalar_subquery(),
                )
            ).one()
        )
    parts.append(
        conn.execute(
            select(
                func.count(),
                func.sum(customer_tags.c.customer_id),
                func.sum(customer_tags.c.tag_id),
                func.max(customer_tags.c.created_at),
            )
        ).one()
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


class OperationalSnapshot:
    """Parquet copies of the operational tables under ``root``, one directory per fingerprint.

    :meth:`paths` returns the current snapshot's files, writing them first when the store
    changed since the last one (written to a temporary directory and renamed into place, so a
    reader never sees half a snapshot; older snapshots beyond the newest two are removed).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def paths(self, conn: Connection) -> dict[str, Path]:
        """The snapshot of the store behind ``conn``: table name -> Parquet file."""
        key = fingerprint(conn)
        target = self.root / key
        if not (target / "_complete").exists():
            self._write(conn, target)
        self._prune(keep=target)
        return {p.stem: p for p in sorted(target.glob("*.parquet"))}

    def _write(self, conn: Connection, target: Path) -> None:
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        try:
            write_parquet(conn, tmp)
            (tmp / "_complete").touch()
            try:
                os.rename(tmp, target)
            except OSError:
                if not (target / "_complete").exists():  # not a concurrent writer's success
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _prune(self, *, keep: Path) -> None:
        done = [p for p in self.root.iterdir() if p.is_dir() and (p / "_complete").exists()]
        done.sort(key=lambda p: (p / "_complete").stat().st_mtime, reverse=True)
        for old in [p for p in done if p != keep][KEEP_SNAPSHOTS - 1 :]:
            shutil.rmtree(old, ignore_errors=True)
