"""Subscriptions, invoices and orders: money, MRR, references and per-kind rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.billing.models import (
    BillingPeriod,
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    Subscription,
    SubscriptionStatus,
)
from keepwell.imports.summary import Reject
from tests.factories import make_subscription
from tests.imports.conftest import Run
from tests.imports.files import write_csv, write_parquet

SUB_HEADER = [
    "external_id",
    "customer_id",
    "plan",
    "price",
    "mrr_minor",
    "currency",
    "billing_period",
    "quantity",
    "started_at",
    "ended_at",
    "status",
    "cancel_reason",
]


def _by_external_id(db_session: Session, model: Any) -> dict[str, Any]:
    return {row.external_id: row for row in db_session.scalars(select(model))}


def _problems(rejects: list[Reject]) -> set[tuple[int, str | None, str]]:
    return {(r.row, r.field, r.reason) for r in rejects}


def test_subscriptions_csv_mrr_from_price_and_period(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, Any]
) -> None:
    rows = [
        # yearly 1000.00 -> 100000/12 = 8333.33 -> 8333 cents
        ["s1", "cus_a", "pro", "1000.00", None, "usd", "year", "3", "2026-01-01", None, None, None],
        # quarterly 10.01 -> 1001/3 = 333.67 -> 334
        [
            "s2",
            "cus_a",
            "pro",
            "10.01",
            None,
            None,
            "quarter",
            None,
            "2026-01-01",
            None,
            None,
            None,
        ],
        # half-even: 0.30/12 -> 30/12 = 2.5 -> 2 ; JPY has no minor unit
        ["s3", "cus_b", "mini", "0.30", None, "EUR", "year", None, "2026-01-01", None, None, None],
        ["s4", "cus_b", "jp", "1200", None, "JPY", "month", None, "2026-01-01", None, None, None],
        [
            "s5",
            "cus_b",
            "direct",
            None,
            "4900",
            None,
            None,
            None,
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
            "canceled",
            "too expensive",
        ],
    ]
    summary = run("subscriptions", write_csv(tmp_path / "s.csv", SUB_HEADER, rows))

    assert (summary.inserted, summary.rejected) == (5, 0), summary.rejects
    subs = _by_external_id(db_session, Subscription)
    assert subs["s1"].mrr_minor == 8333
    assert subs["s1"].currency == "USD"
    assert subs["s1"].billing_period is BillingPeriod.year
    assert subs["s1"].quantity == 3
    assert subs["s1"].customer_id == customers["cus_a"].id
    assert subs["s2"].mrr_minor == 334
    assert subs["s2"].currency == "USD"  # the default currency
    assert subs["s3"].mrr_minor == 2
    assert subs["s4"].mrr_minor == 1200
    assert subs["s5"].mrr_minor == 4900
    assert subs["s5"].ended_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert subs["s5"].status is SubscriptionStatus.canceled
    assert subs["s5"].cancel_reason == "too expensive"
    assert subs["s2"].status is SubscriptionStatus.active
    assert subs["s2"].quantity == 1


def test_subscriptions_parquet(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, Any]
) -> None:
    path = write_parquet(
        tmp_path / "s.parquet",
        {
            "external_id": ["s1"],
            "customer_id": ["cus_a"],
            "plan": ["pro"],
            "mrr": pa.array([Decimal("49.90")], pa.decimal128(10, 2)),
            "started_at": pa.array([datetime(2026, 1, 1, 12)], pa.timestamp("us")),
            "quantity": pa.array([2], pa.int32()),
        },
    )
    summary = run("subscriptions", path, default_currency="EUR")

    assert summary.inserted == 1, summary.rejects
    sub = _by_external_id(db_session, Subscription)["s1"]
    assert (sub.mrr_minor, sub.currency, sub.quantity) == (4990, "EUR", 2)
    assert sub.started_at == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_subscription_row_rules(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, Any]
) -> None:
    header = ["external_id", "customer_id", "plan", "mrr", "price", "quantity", "started_at"]
    header += ["ended_at"]
    rows = [
        ["ok", "cus_a", "pro", "10", None, None, "2026-01-01", None],
        ["both", "cus_a", "pro", "10", "120", None, "2026-01-01", None],
        ["none", "cus_a", "pro", None, None, None, "2026-01-01", None],
        ["early", "cus_a", "pro", "10", None, None, "2026-02-01", "2026-01-01"],
        ["ghost", "cus_zz", "pro", "10", None, None, "2026-01-01", None],
        ["seats", "cus_a", "pro", "10", None, "0", "2026-01-01", None],
        ["neg", "cus_a", "pro", "-5", None, None, "2026-01-01", None],
    ]
    summary = run("subscriptions", write_csv(tmp_path / "s.csv", header, rows))

    assert (summary.inserted, summary.rejected) == (1, 6)
    problems = _problems(summary.rejects)
    options = "mrr, mrr_minor, price or price_minor"
    assert (2, "mrr", f"give exactly one of {options}, not mrr and price") in problems
    assert (3, "mrr", f"no amount: give one of {options}") in problems
    assert (4, "ended_at", "ended_at is before started_at") in problems
    assert (5, "customer_id", "customer 'cus_zz' not found; import customers first") in problems
    assert (6, "quantity", "must be at least 1") in problems
    assert (7, "mrr", "must not be negative") in problems


def test_invoices_amounts_and_subscription_reference(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, Any]
) -> None:
    sub = make_subscription(db_session, customers["cus_a"], external_id="sub_a")
    make_subscription(db_session, customers["cus_b"], external_id="sub_b")
    header = [
        "external_id",
        "customer_id",
        "subscription_id",
        "amount",
        "amount_minor",
        "currency",
        "issued_at",
        "due_at",
        "paid_at",
        "status",
        "attempt_count",
        "failure_reason",
    ]
    rows = [
        [
            *("in1", "cus_a", "sub_a", "49.90", None, "eur", "2026-01-01", "2026-01-15", None),
            *("failed", "2", "card_declined"),
        ],
        [
            *("in2", "cus_a", None, None, "1500", "BHD", "2026-01-02T10:00:00Z", None, None),
            *(None, None, None),
        ],
        ["in3", "cus_a", "sub_zz", "1", None, None, "2026-01-01", None, None, None, None, None],
        ["in4", "cus_a", "sub_b", "1", None, None, "2026-01-01", None, None, None, None, None],
        ["in5", "cus_a", None, "abc", None, None, "2026-01-01", None, None, None, None, None],
        ["in6", "cus_a", None, "1.999", None, "USD", "2026-01-01", None, None, None, None, None],
        ["in7", "cus_a", None, None, None, None, "2026-01-01", None, None, "lost", "x", None],
    ]
    summary = run("invoices", write_csv(tmp_path / "i.csv", header, rows))

    assert (summary.inserted, summary.rejected) == (2, 5)
    invoices = _by_external_id(db_session, Invoice)
    in1 = invoices["in1"]
    assert (in1.amount_minor, in1.currency, in1.subscription_id) == (4990, "EUR", sub.id)
    assert in1.status is InvoiceStatus.failed
    assert (in1.attempt_count, in1.failure_reason) == (2, "card_declined")
    assert in1.due_at == datetime(2026, 1, 15, tzinfo=UTC)
    assert in1.paid_at is None
    in2 = invoices["in2"]
    assert (in2.amount_minor, in2.currency, in2.status) == (1500, "BHD", InvoiceStatus.open)
    assert in2.attempt_count == 0

    problems = _problems(summary.rejects)
    assert (
        3,
        "subscription_id",
        "subscription 'sub_zz' not found; import subscriptions first",
    ) in problems
    assert (4, "subscription_id", "subscription 'sub_b' belongs to another customer") in problems
    assert (
        5,
        "amount",
        "expected a non-negative amount with '.' as decimal point, e.g. 49.90",
    ) in problems
    assert (6, "amount", "too many decimal places: this currency has 2") in problems
    choices = ", ".join(s.value for s in InvoiceStatus)
    assert (7, "amount", "required value is empty") in problems
    assert (7, "status", f"expected one of: {choices}") in problems
    assert (7, "attempt_count", "expected a whole number, e.g. 3") in problems


@pytest.mark.parametrize(
    ("cells", "expected_minor"),
    [
        (("12.5", "JPY"), None),  # JPY has no decimals
        (("12", "JPY"), 12),
        (("1.234", "BHD"), 1234),
        (("7.10", "USD"), 710),
        (("7.100", "USD"), 710),  # trailing zeros are not extra precision
        ((" 3 ", "USD"), 300),
    ],
)
def test_orders_amount_uses_currency_decimals(
    db_session: Session,
    run: Run,
    tmp_path: Path,
    customers: dict[str, Any],
    cells: tuple[str, str],
    expected_minor: int | None,
) -> None:
    header = ["external_id", "customer_id", "ordered_at", "amount", "currency"]
    path = write_csv(tmp_path / "o.csv", header, [["o1", "cus_a", "2026-01-01", *cells]])
    summary = run("orders", path)

    orders = _by_external_id(db_session, Order)
    if expected_minor is None:
        assert summary.rejected == 1 and not orders
    else:
        assert orders["o1"].amount_minor == expected_minor


def test_orders_fields_and_items_rule(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, Any]
) -> None:
    header = ["external_id", "customer_id", "ordered_at", "amount_minor", "category", "items"]
    header.append("status")
    rows = [
        ["o1", "cus_b", "2026-01-05T08:00:00-05:00", "2599", "books", "3", "refunded"],
        ["o2", "cus_b", "2026-01-05", "100", None, "0", None],
        ["o3", "cus_b", "2026-01-05", "-100", None, None, None],
    ]
    summary = run("orders", write_csv(tmp_path / "o.csv", header, rows))

    order = _by_external_id(db_session, Order)["o1"]
    assert order.ordered_at == datetime(2026, 1, 5, 13, tzinfo=UTC)
    assert (order.amount_minor, order.currency, order.category) == (2599, "USD", "books")
    assert (order.items, order.status) == (3, OrderStatus.refunded)
    assert order.customer_id == customers["cus_b"].id
    problems = _problems(summary.rejects)
    assert (2, "items", "must be at least 1") in problems
    assert (3, "amount_minor", "must not be negative") in problems
