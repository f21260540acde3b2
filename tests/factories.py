"""Tiny factories for test rows: sensible defaults, override what the test is about."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from keepwell.billing.models import Invoice, Subscription
from keepwell.customers.models import Customer

_seq = itertools.count(1)


def at(*args: int) -> datetime:
    """An aware UTC datetime: ``at(2026, 1, 31)``."""
    return datetime(*args, tzinfo=UTC)


def make_customer(db_session: Session, **overrides: Any) -> Customer:
    n = next(_seq)
    values: dict[str, Any] = {
        "external_id": f"cus_{n}",
        "name": f"Customer {n}",
        "signup_at": at(2026, 1, 1),
    }
    values.update(overrides)
    customer = Customer(**values)
    db_session.add(customer)
    db_session.flush()
    return customer


def make_subscription(db_session: Session, customer: Customer, **overrides: Any) -> Subscription:
    n = next(_seq)
    values: dict[str, Any] = {
        "external_id": f"sub_{n}",
        "customer_id": customer.id,
        "plan": "pro",
        "mrr_minor": 4900,
        "currency": "USD",
        "started_at": at(2026, 1, 1),
    }
    values.update(overrides)
    sub = Subscription(**values)
    db_session.add(sub)
    db_session.flush()
    return sub


def make_invoice(db_session: Session, customer: Customer, **overrides: Any) -> Invoice:
    n = next(_seq)
    values: dict[str, Any] = {
        "external_id": f"in_{n}",
        "customer_id": customer.id,
        "amount_minor": 4900,
        "currency": "USD",
        "issued_at": at(2026, 1, 1),
    }
    values.update(overrides)
    invoice = Invoice(**values)
    db_session.add(invoice)
    db_session.flush()
    return invoice
