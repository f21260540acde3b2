"""The operational tables as Arrow, and the Parquet snapshot reports read (SQLite + PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer, Tag
from keepwell.metrics.operational import OperationalSnapshot, fingerprint, read_tables
from keepwell.metrics.sources import SCHEMAS
from keepwell.surveys.models import SurveyKind, SurveyResponse
from keepwell.users.models import StaffUser
from tests.factories import at, make_customer, make_invoice, make_subscription


def _data(db_session: Session) -> None:
    owner = StaffUser(email="ana@example.com", name="Ana")
    db_session.add(owner)
    db_session.flush()
    a = make_customer(
        db_session,
        external_id="A",
        signup_at=at(2026, 1, 2, 3, 4, 5, 678901),
        industry="travel",
        owner_id=owner.id,
        attributes={"seats": 12, "tier": "gold", "beta": True},
    )
    b = make_customer(db_session, external_id="B", attributes={"tier": None})
    make_subscription(db_session, a, mrr_minor=4900, started_at=at(2026, 1, 5))
    make_subscription(db_session, b, mrr_minor=0)  # free: not a paying row
    make_invoice(db_session, a, amount_minor=4900, paid_at=at(2026, 1, 6, 12))
    db_session.add(
        SurveyResponse(
            external_id="s1",
            customer_id=a.id,
            kind=SurveyKind.nps,
            score=3,
            responded_at=at(2026, 2, 1),
        )
    )
    tag = Tag(name="vip")
    db_session.add(tag)
    a.tags.append(tag)
    db_session.flush()


def test_tables_have_the_metric_schemas_and_values(db_session: Session) -> None:
    _data(db_session)
    tables = read_tables(db_session.connection())
    customers = tables["customers"].to_pylist()
    a = next(r for r in customers if r["customer_id"] == "A")
    assert a["signup_at"] == datetime(2026, 1, 2, 3, 4, 5, 678901)  # naive UTC, microseconds
    assert (a["industry"], a["owner"], a["status"]) == ("travel", "ana@example.com", "active")
    assert (a["attr_seats"], a["attr_tier"], a["attr_beta"]) == ("12", "gold", "True")
    b = next(r for r in customers if r["customer_id"] == "B")
    assert (b["owner"], b["attr_tier"], b["attr_seats"]) == (None, None, None)
    for name, schema in SCHEMAS.items():
        if name == "events":
            continue
        assert tables[name].column_names[: len(schema)] == list(schema), name
    assert tables["customers"].schema.field("signup_at").type == pa.timestamp("us")
    subs = tables["subscriptions"].to_pylist()
    assert [(s["customer_id"], s["mrr_minor"], s["ended_at"]) for s in subs] == [("A", 4900, None)]
    (inv,) = tables["invoices"].to_pylist()
    assert (inv["paid_at"], inv["status"]) == (datetime(2026, 1, 6, 12), "open")
    (nps,) = tables["surveys"].to_pylist()
    assert (nps["kind"], nps["score"]) == ("nps", 3)
    assert tables["customer_tags"].to_pylist() == [{"customer_id": "A", "tag": "vip"}]
    assert tables["orders"].num_rows == 0
    assert tables["orders"].schema.field("ordered_at").type == pa.timestamp("us")


def test_snapshot_is_reused_until_the_data_changes(db_session: Session, tmp_path: Path) -> None:
    _data(db_session)
    conn = db_session.connection()
    snap = OperationalSnapshot(tmp_path / "snap")
    first = snap.paths(conn)
    assert pq.read_table(first["customers"]).num_rows == 2
    assert snap.paths(conn) == first  # unchanged: the same files

    staff = db_session.query(StaffUser).one()
    staff.updated_at = at(2026, 11, 22)  # a login stamps the staff row: reports read nothing new
    db_session.flush()
    assert snap.paths(conn) == first

    customer = make_customer(db_session, external_id="C")
    second = snap.paths(conn)
    assert second != first and pq.read_table(second["customers"]).num_rows == 3

    customer.industry = "retail"  # an edit: updated_at moves on
    customer.updated_at = at(2030, 1, 1)
    db_session.flush()
    third = snap.paths(conn)
    assert third != second
    assert "retail" in pq.read_table(third["customers"]).column("industry").to_pylist()

    customer.tags.append(db_session.query(Tag).one())  # a new tag link
    db_session.flush()
    fourth = snap.paths(conn)
    assert fourth != third and pq.read_table(fourth["customer_tags"]).num_rows == 2
    kept = [p for p in (tmp_path / "snap").iterdir() if p.is_dir()]
    assert len(kept) == 2  # the newest two snapshots


def test_fingerprint_changes_with_each_table(db_session: Session) -> None:
    _data(db_session)
    conn = db_session.connection()
    before = fingerprint(conn)
    customer = make_customer(db_session, external_id="D")
    after_customer = fingerprint(conn)
    make_invoice(db_session, customer, amount_minor=100)
    after_invoice = fingerprint(conn)
    assert len({before, after_customer, after_invoice}) == 3


def test_tables_are_read_and_written_in_batches(db_session: Session, tmp_path: Path, monkeypatch):
    from keepwell.metrics import operational

    _data(db_session)
    for i in range(5):  # more customers and invoices than one batch holds
        c = make_customer(db_session, external_id=f"X{i}", attributes={f"k{i}": i})
        make_invoice(db_session, c, amount_minor=100 + i)
    conn = db_session.connection()
    whole = read_tables(conn)
    monkeypatch.setattr(operational, "BATCH_ROWS", 2)
    batched = read_tables(conn)
    for name, table in whole.items():
        assert batched[name].num_rows == table.num_rows, name
        assert batched[name].sort_by("customer_id").equals(table.sort_by("customer_id")), name
    assert {f"attr_k{i}" for i in range(5)} <= set(batched["customers"].column_names)
    operational.write_parquet(conn, tmp_path)
    on_disk = pq.read_table(tmp_path / "invoices.parquet")
    assert on_disk.num_rows == 6 and on_disk.schema.equals(whole["invoices"].schema)
    assert pq.read_table(tmp_path / "orders.parquet").num_rows == 0  # empty: still a file


def test_sqlite_fingerprint_is_remembered_until_any_connection_commits(tmp_path, monkeypatch):
    from keepwell import migrate
    from keepwell.db import make_engine, session_scope
    from keepwell.metrics import operational

    engine = make_engine(f"sqlite:///{tmp_path / 'kw.db'}")
    migrate.upgrade(engine)
    other = make_engine(f"sqlite:///{tmp_path / 'kw.db'}")
    computed = []
    real = operational._fingerprint
    monkeypatch.setattr(operational, "_fingerprint", lambda c: computed.append(1) or real(c))

    def current() -> str:  # as data_version reads it: a pooled connection, one transaction
        with engine.connect() as conn:
            return fingerprint(conn)

    first = current()
    assert current() == first and len(computed) == 1  # nothing changed: remembered
    with session_scope(other) as s:  # another connection commits a customer
        make_customer(s, external_id="N1")
    second = current()
    assert second != first and len(computed) == 2
    with engine.begin() as conn:  # the pooled connection itself commits a change
        conn.execute(Customer.__table__.update().values(name="renamed"))
    third = current()
    assert third != second and len(computed) == 3
    assert current() == third and len(computed) == 3
    other.dispose()
    engine.dispose()
