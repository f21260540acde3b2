"""Billing service: subscriptions in force, MRR, and a customer's money history.

Conventions (PRODUCT.md section 1): a subscription row is *in force* at time t when
``started_at <= t < ended_at`` (``ended_at`` exclusive, open when null); a customer is *active*
(a paying customer) at t when at least one of its rows is in force, is not a trial and has
MRR > 0 (free plans and expired trials do not count). Trials count once they convert: the
paid row's start is when the customer is new. The full metrics engine (grace gaps, movements,
cohorts) lives in ``keepwell.metrics``; this module answers the operational questions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from keepwell.billing.models import Invoice, Order, Subscription, SubscriptionStatus


def _in_force(at: datetime):
    return and_(
        Subscription.started_at <= at,
        or_(Subscription.ended_at.is_(None), Subscription.ended_at > at),
    )


def _paying(at: datetime):
    """In force at ``at``, not a trial and not free: what makes someone a paying customer."""
    return and_(
        _in_force(at),
        Subscription.status != SubscriptionStatus.trialing,
        Subscription.mrr_minor > 0,
    )


def current_subscriptions(
    *, db_session: Session, customer_ids: Sequence[int], at: datetime
) -> dict[int, list[Subscription]]:
    """The subscription rows in force at ``at``, per customer id (only customers that have some)."""
    result: dict[int, list[Subscription]] = defaultdict(list)
    if not customer_ids:
        return result
    rows = db_session.scalars(
        select(Subscription)
        .where(Subscription.customer_id.in_(list(customer_ids)), _in_force(at))
        .order_by(Subscription.customer_id, Subscription.started_at)
    )
    for sub in rows:
        result[sub.customer_id].append(sub)
    return result


def mrr_at(*, db_session: Session, at: datetime) -> dict[str, int]:
    """Total MRR in force at ``at`` in minor units, per currency.

    MRR(t) = sum of ``mrr_minor`` over subscription rows with started_at <= t < ended_at.
    """
    rows = db_session.execute(
        select(Subscription.currency, func.sum(Subscription.mrr_minor))
        .where(_paying(at))
        .group_by(Subscription.currency)
    )
    return {currency: int(total) for currency, total in rows}


def active_customer_count(*, db_session: Session, at: datetime) -> int:
    """Customers with at least one subscription row in force at ``at``."""
    return (
        db_session.scalar(
            select(func.count(func.distinct(Subscription.customer_id))).where(_paying(at))
        )
        or 0
    )


@dataclass(frozen=True)
class LogoChurn:
    """Start-cohort customer churn for [start, end).

    rate = lost / at_start, where at_start = customers active at ``start`` and lost = those of
    them not active at ``end``. ``rate`` is None when nobody was active at the start.
    """

    start: datetime
    end: datetime
    at_start: int
    lost: int

    @property
    def rate(self) -> float | None:
        return self.lost / self.at_start if self.at_start else None


def logo_churn(*, db_session: Session, start: datetime, end: datetime) -> LogoChurn:
    """Start-cohort logo churn for the period [start, end) (see :class:`LogoChurn`)."""
    active_start = select(Subscription.customer_id).where(_paying(start)).distinct().subquery()
    active_end = select(Subscription.customer_id).where(_paying(end)).distinct().subquery()
    at_start = db_session.scalar(select(func.count()).select_from(active_start)) or 0
    kept = (
        db_session.scalar(
            select(func.count())
            .select_from(active_start)
            .join(active_end, active_start.c.customer_id == active_end.c.customer_id)
        )
        or 0
    )
    return LogoChurn(start=start, end=end, at_start=at_start, lost=at_start - kept)


def subscriptions_of(*, db_session: Session, customer_id: int) -> list[Subscription]:
    """All subscription rows of a customer, oldest first."""
    return list(
        db_session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer_id)
            .order_by(Subscription.started_at, Subscription.id)
        )
    )


def invoices_of(*, db_session: Session, customer_id: int, limit: int = 50) -> list[Invoice]:
    """A customer's most recent invoices, newest first."""
    return list(
        db_session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer_id)
            .order_by(Invoice.issued_at.desc(), Invoice.id.desc())
            .limit(limit)
        )
    )


def orders_of(*, db_session: Session, customer_id: int, limit: int = 50) -> list[Order]:
    """A customer's most recent orders, newest first."""
    return list(
        db_session.scalars(
            select(Order)
            .where(Order.customer_id == customer_id)
            .order_by(Order.ordered_at.desc(), Order.id.desc())
            .limit(limit)
        )
    )
