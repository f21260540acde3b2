"""Campaign fixtures: a few customers with contacts, owners, plans and scores."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from keepwell.customers.models import Contact, Customer
from keepwell.health.models import HealthScore
from keepwell.risk.models import RiskScore
from keepwell.users.models import Role, StaffUser
from tests.factories import at, make_customer, make_subscription


def add_scores(db_session: Session, customer: Customer, *, risk: str, health: str) -> None:
    """An old and a newer risk and health score (the newer one counts)."""
    for when, band in ((at(2026, 1, 1), "low"), (at(2026, 2, 1), risk)):
        db_session.add(
            RiskScore(
                customer_id=customer.id,
                scored_at=when,
                as_of=when,
                model_version="t",
                probability=0.5,
                band=band,
                reasons=[],
            )
        )
    for when, band, score in ((at(2026, 1, 1), "green", 90.0), (at(2026, 2, 1), health, 31.6)):
        db_session.add(
            HealthScore(
                customer_id=customer.id,
                scored_at=when,
                as_of=when,
                score=score,
                band=band,
                components={},
            )
        )
    db_session.flush()


@pytest.fixture
def acme(db_session: Session) -> Customer:
    """A full customer: owner, primary contact, two plans in force, scores, attributes."""
    owner = StaffUser(email="ana@keepwell.test", name="Ana Owner", role=Role.csm)
    db_session.add(owner)
    db_session.flush()
    customer = make_customer(
        db_session,
        name="Acme <script>alert(1)</script> & Co",
        email="billing@acme.test",
        company="Acme GmbH",
        industry="travel",
        time_zone="Europe/Berlin",
        owner_id=owner.id,
        attributes={"seats": 12, "tier": "gold", "items": "x"},
    )
    customer.contacts.append(Contact(name="Old Contact", email="old@acme.test", is_primary=False))
    customer.contacts.append(Contact(name="Bo Berg", email="bo@acme.test", is_primary=True))
    db_session.flush()
    make_subscription(db_session, customer, plan="pro", mrr_minor=123456, currency="USD")
    make_subscription(db_session, customer, plan="addon", mrr_minor=1000, currency="USD")
    add_scores(db_session, customer, risk="high", health="red")
    return customer


@pytest.fixture
def bare(db_session: Session) -> Customer:
    """A customer with nothing but a name and an address."""
    return make_customer(db_session, name="Bare Ltd", email="hi@bare.test")
