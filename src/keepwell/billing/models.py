"""Subscriptions, invoices/payments and orders: the money side of a customer.

Money is an integer amount in minor units (cents) plus an ISO 4217 currency code.

A row of ``subscriptions`` is one *subscription period at a constant price*: a plan change
ends the row and starts a new one for the same customer, so MRR history (new, expansion,
contraction, churn, reactivation) is read straight off the rows.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, TimeStampMixin


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, validate_strings=True)


class BillingPeriod(enum.StrEnum):
    """How often a subscription is billed."""

    month = "month"
    quarter = "quarter"
    year = "year"


MONTHS_PER_PERIOD = {BillingPeriod.month: 1, BillingPeriod.quarter: 3, BillingPeriod.year: 12}


class SubscriptionStatus(enum.StrEnum):
    """Lifecycle state of a subscription row."""

    trialing = "trialing"
    active = "active"
    past_due = "past_due"
    paused = "paused"
    canceled = "canceled"


class InvoiceStatus(enum.StrEnum):
    """State of an invoice and its payment."""

    draft = "draft"
    open = "open"
    paid = "paid"
    overdue = "overdue"
    failed = "failed"
    void = "void"
    refunded = "refunded"


class OrderStatus(enum.StrEnum):
    """State of a one-off order (repeat-purchase businesses)."""

    completed = "completed"
    refunded = "refunded"
    cancelled = "cancelled"


class Subscription(TimeStampMixin, Base):
    """A subscription period: plan and MRR are constant from ``started_at`` to ``ended_at``.

    Active at time t when ``started_at <= t < ended_at`` (``ended_at`` exclusive; open-ended
    when null).
    """

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    plan: Mapped[str] = mapped_column(String(120))
    mrr_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    billing_period: Mapped[BillingPeriod] = mapped_column(
        _enum(BillingPeriod), default=BillingPeriod.month
    )
    quantity: Mapped[int] = mapped_column(default=1)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    status: Mapped[SubscriptionStatus] = mapped_column(
        _enum(SubscriptionStatus), default=SubscriptionStatus.active
    )
    cancel_reason: Mapped[str | None]

    __table_args__ = (
        CheckConstraint("mrr_minor >= 0", name="mrr_non_negative"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        Index("ix_subscriptions_started_at", "started_at"),
        Index("ix_subscriptions_updated_at", "updated_at"),  # the metrics' data version
    )


class Invoice(TimeStampMixin, Base):
    """An invoice and its payment state (``failed`` / ``overdue`` are pre-churn signals)."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL"), index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    status: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus), default=InvoiceStatus.open)
    attempt_count: Mapped[int] = mapped_column(default=0)
    failure_reason: Mapped[str | None]

    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount_non_negative"),
        Index("ix_invoices_issued_at", "issued_at"),
        Index("ix_invoices_updated_at", "updated_at"),
    )


class Order(TimeStampMixin, Base):
    """A one-off purchase, for repeat-purchase (e-commerce) businesses."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    ordered_at: Mapped[datetime]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(120))
    items: Mapped[int] = mapped_column(default=1)
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus), default=OrderStatus.completed)

    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount_non_negative"),
        Index("ix_orders_ordered_at", "ordered_at"),
        Index("ix_orders_updated_at", "updated_at"),
    )
