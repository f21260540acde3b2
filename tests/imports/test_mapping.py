"""Column mappings: renames, defaults, value translations, time zone; the Stripe example."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.billing.models import BillingPeriod, Subscription, SubscriptionStatus
from keepwell.customers.models import Customer, CustomerStatus
from keepwell.imports.mapping import ColumnMapping
from tests.factories import make_customer
from tests.imports.conftest import Run
from tests.imports.files import write_csv

DOCS = Path(__file__).resolve().parents[2] / "docs" / "mappings"


def test_mapping_renames_fills_defaults_and_translates_values(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "crm.csv",
        ["Account", "Account Name", "Since", "Lifecycle", "Seats"],
        [
            ["A-1", "Acme", "2026-01-01 09:00", "Customer", "12"],
            ["A-2", "Beta", "2026-01-02 09:00", "Prospect", None],
            ["A-3", "Gamma", "2026-01-03 09:00", None, "3"],
        ],
    )
    mapping = ColumnMapping.from_pairs(
        ["external_id=Account", "name=Account Name", "signup_at=Since", "attr_seats=Seats"],
        base=ColumnMapping(
            columns={"status": "Lifecycle"},
            defaults={"status": "trial", "industry": "travel"},
            values={"status": {"Customer": "active", "Prospect": "lead"}},
            timezone="America/New_York",
        ),
    )
    summary = run("customers", path, mapping=mapping)

    assert (summary.inserted, summary.rejected) == (3, 0), summary.rejects
    stored = {c.external_id: c for c in db_session.scalars(select(Customer))}
    assert stored["A-1"].status is CustomerStatus.active
    assert stored["A-2"].status is CustomerStatus.lead
    assert stored["A-3"].status is CustomerStatus.trial  # empty cell -> mapping default
    assert {c.industry for c in stored.values()} == {"travel"}  # constant column
    assert stored["A-1"].attributes == {"seats": "12"}
    # the mapping's time zone wins over the import's default (UTC)
    assert stored["A-1"].signup_at == datetime(2026, 1, 1, 14, tzinfo=UTC)


def test_mapping_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[columns]\nexternal_id = "id"\n[defaults]\nbilling_period = "month"\n'
        '[values.status]\npast_due = "past_due"\n[options]\ntimezone = "Europe/Berlin"\n',
        encoding="utf-8",
    )
    mapping = ColumnMapping.load(path)
    assert mapping.columns == {"external_id": "id"}
    assert mapping.defaults == {"billing_period": "month"}
    assert mapping.timezone == "Europe/Berlin"


def test_stripe_subscriptions_sample_with_the_documented_mapping(
    db_session: Session, run: Run
) -> None:
    for external_id in ("cus_QAcme01", "cus_QBeta02", "cus_QGamma3", "cus_QDelta4"):
        make_customer(db_session, external_id=external_id)
    for external_id in ("cus_QEps05", "cus_QZeta06"):
        make_customer(db_session, external_id=external_id)
    mapping = ColumnMapping.load(DOCS / "stripe-subscriptions.toml")
    summary = run("subscriptions", DOCS / "stripe-subscriptions-sample.csv", mapping=mapping)

    assert (summary.rows, summary.inserted, summary.rejected) == (6, 5, 1)
    [reject] = summary.rejects
    assert (reject.row, reject.field, reject.value) == (6, "billing_period", "week")
    assert reject.reason == "expected one of: month, quarter, year"
    assert any(
        "Customer Description" in n and "Product" in n and "Canceled At (UTC)" in n
        for n in summary.notes
    )

    subs = {s.external_id: s for s in db_session.scalars(select(Subscription))}
    acme, beta, gamma = subs["sub_1PqAcme01"], subs["sub_1PqBeta02"], subs["sub_1PqGamma3"]
    delta, eps = subs["sub_1PqDelta4"], subs["sub_1PqEps05"]
    assert (acme.plan, acme.mrr_minor, acme.currency) == ("price_pro_monthly", 4900, "USD")
    assert acme.billing_period is BillingPeriod.month
    assert acme.started_at == datetime(2025, 1, 15, 10, 32, tzinfo=UTC)
    assert acme.ended_at is None
    # yearly Amount / 12, rounded half to even in cents: 49000 / 12 = 4083.33
    assert (beta.mrr_minor, beta.billing_period) == (4083, BillingPeriod.year)
    assert (eps.mrr_minor, eps.status) == (8333, SubscriptionStatus.trialing)  # 100000 / 12
    assert (gamma.mrr_minor, gamma.currency) == (9900, "EUR")
    assert gamma.status is SubscriptionStatus.canceled
    assert gamma.ended_at == datetime(2025, 6, 10, 14, 45, tzinfo=UTC)
    assert delta.status is SubscriptionStatus.past_due  # Stripe "unpaid"
    assert {s.quantity for s in subs.values()} == {1}
