"""The generated files import through keepwell's own importers with no rejected row."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.billing.models import Invoice, Order, Subscription
from keepwell.customers.models import Customer
from keepwell.demo.generator import generate
from keepwell.events.importer import import_events
from keepwell.events.store import EventStore
from keepwell.imports import service as import_service

from .conftest import END

ORDER = ("customers", "subscriptions", "invoices", "orders", "surveys", "tickets")


@pytest.mark.parametrize("business", ["saas", "shop"])
def test_demo_files_import_without_rejects(
    db_session: Session, tmp_path: Path, business: str
) -> None:
    manifest = generate(tmp_path / "demo", customers=150, months=12, end=END, business=business)

    for kind in ORDER:
        if kind not in manifest.files:
            continue
        summary = import_service.import_file(
            db_session=db_session,
            kind=kind,
            path=manifest.files[kind],
            rejects_dir=tmp_path / "rejects",
        )
        assert summary.rejected == 0, (kind, summary.rejects[:3])
        assert summary.inserted == manifest.rows[kind], kind

    assert db_session.scalar(select(func.count(Customer.id))) == 150
    if business == "saas":
        assert (
            db_session.scalar(select(func.count(Subscription.id))) == manifest.rows["subscriptions"]
        )
        linked = select(func.count(Invoice.id)).where(Invoice.subscription_id.is_not(None))
        assert db_session.scalar(linked) == manifest.rows["invoices"]
    else:
        assert db_session.scalar(select(func.count(Order.id))) == manifest.rows["orders"]

    known = import_service.known_customer_ids(db_session=db_session)
    events = import_events(
        manifest.files["events"],
        store=EventStore(tmp_path / "events"),
        known_customer_ids=known,
        rejects_dir=tmp_path / "rejects",
    )
    assert events.rejected == 0
    assert events.inserted == manifest.rows["events"]
