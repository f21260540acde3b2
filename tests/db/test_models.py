"""Every table round-trips on SQLite and PostgreSQL; constraints hold on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keepwell import migrate
from keepwell.all_models import (
    Contact,
    Customer,
    ImportRun,
    Invoice,
    Note,
    Order,
    StaffUser,
    Subscription,
    SurveyResponse,
    Tag,
    Ticket,
    TimelineEntry,
    metadata,
)
from keepwell.billing.models import InvoiceStatus
from keepwell.customers.models import CustomerStatus
from keepwell.surveys.models import SurveyKind
from keepwell.users.models import Role
from tests.factories import at, make_customer, make_invoice, make_subscription


def test_migrations_match_models(engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, metadata) == []
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_customer_round_trip(db_session: Session) -> None:
    owner = StaffUser(email="ana@example.com", name="Ana", role=Role.csm)
    tag = Tag(name="vip")
    customer = Customer(
        external_id="cus_1",
        name="Acme 🚀 <b>",
        email="ops@acme.test",
        company="Acme",
        industry="travel",
        country="DE",
        time_zone="Europe/Berlin",
        signup_at=datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
        owner=owner,
        status=CustomerStatus.trial,
        attributes={"seats": 12, "segment": "smb", "nested": {"a": [1, 2]}},
        tags=[tag],
        contacts=[Contact(name="Bo", email="bo@acme.test", is_primary=True)],
    )
    db_session.add(customer)
    db_session.flush()
    db_session.expunge_all()

    got = db_session.scalars(select(Customer).where(Customer.external_id == "cus_1")).one()
    assert got.name == "Acme 🚀 <b>"
    assert got.signup_at == datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
    assert got.signup_at.tzinfo is not None
    assert got.attributes == {"seats": 12, "segment": "smb", "nested": {"a": [1, 2]}}
    assert got.owner.email == "ana@example.com"
    assert [t.name for t in got.tags] == ["vip"]
    assert got.contacts[0].is_primary is True
    assert got.status is CustomerStatus.trial


def test_billing_and_activity_round_trip(db_session: Session) -> None:
    customer = make_customer(db_session)
    sub = make_subscription(db_session, customer, mrr_minor=123456789012, ended_at=at(2026, 2, 1))
    inv = make_invoice(
        db_session, customer, subscription_id=sub.id, status=InvoiceStatus.failed, attempt_count=3
    )
    db_session.add_all(
        [
            Order(
                external_id="o1",
                customer_id=customer.id,
                ordered_at=at(2026, 1, 5),
                amount_minor=2500,
                currency="EUR",
                category="shoes",
            ),
            SurveyResponse(
                external_id="s1",
                customer_id=customer.id,
                kind=SurveyKind.nps,
                score=3,
                comment="slow",
                responded_at=at(2026, 1, 9),
            ),
            Ticket(external_id="t1", customer_id=customer.id, opened_at=at(2026, 1, 10)),
            Note(customer_id=customer.id, body="called them"),
            TimelineEntry(customer_id=customer.id, kind="note", title="x", detail={"k": 1}),
            ImportRun(kind="customers", source="f.csv", sha256="0" * 64),
        ]
    )
    db_session.flush()
    db_session.expunge_all()
    assert db_session.get(Subscription, sub.id).mrr_minor == 123456789012
    assert db_session.get(Invoice, inv.id).status is InvoiceStatus.failed
    assert db_session.scalars(select(Order)).one().currency == "EUR"
    assert db_session.scalars(select(SurveyResponse)).one().score == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": SurveyKind.nps, "score": 11},
        {"kind": SurveyKind.csat, "score": 0},
        {"kind": SurveyKind.nps, "score": None},
    ],
)
def test_survey_score_range_enforced(db_session: Session, bad: dict) -> None:
    customer = make_customer(db_session)
    db_session.add(
        SurveyResponse(external_id="s", customer_id=customer.id, responded_at=at(2026, 1, 1), **bad)
    )
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_negative_money_and_duplicate_external_id_rejected(db_session: Session) -> None:
    customer = make_customer(db_session, external_id="dup")
    with pytest.raises(IntegrityError):
        make_subscription(db_session, customer, mrr_minor=-1)
    db_session.rollback()
    make_customer(db_session, external_id="dup2")
    with pytest.raises(IntegrityError):
        make_customer(db_session, external_id="dup2")


def test_naive_datetime_refused(db_session: Session) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        make_customer(db_session, signup_at=datetime(2026, 1, 1))


def test_commit_inside_a_test_session_is_rolled_back(engine) -> None:
    """Service code may commit: on both databases that only releases a savepoint."""
    from sqlalchemy import func

    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    make_customer(session, external_id="leak-check")
    session.commit()
    assert (
        session.scalar(select(func.count(Customer.id)).where(Customer.external_id == "leak-check"))
        == 1
    )
    session.close()
    outer.rollback()
    connection.close()
    with Session(engine) as fresh:
        assert (
            fresh.scalar(
                select(func.count(Customer.id)).where(Customer.external_id == "leak-check")
            )
            == 0
        )
