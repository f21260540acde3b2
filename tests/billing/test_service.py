"""Billing service: subscriptions in force, MRR and start-cohort logo churn, hand-computed."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from keepwell.billing import service
from tests.factories import at, make_customer, make_subscription


def test_in_force_is_start_inclusive_end_exclusive(db_session: Session) -> None:
    c = make_customer(db_session)
    make_subscription(
        db_session, c, mrr_minor=1000, started_at=at(2026, 1, 1), ended_at=at(2026, 2, 1)
    )
    assert service.mrr_at(db_session=db_session, at=at(2026, 1, 1)) == {"USD": 1000}
    assert service.mrr_at(db_session=db_session, at=at(2026, 1, 31, 23, 59)) == {"USD": 1000}
    assert service.mrr_at(db_session=db_session, at=at(2026, 2, 1)) == {}
    assert service.active_customer_count(db_session=db_session, at=at(2025, 12, 31)) == 0


def test_mrr_sums_per_currency_and_follows_plan_changes(db_session: Session) -> None:
    a = make_customer(db_session)
    b = make_customer(db_session)
    # a: upgrade on Feb 1 (one row ends, the next starts at the same instant)
    make_subscription(
        db_session, a, mrr_minor=2900, started_at=at(2026, 1, 1), ended_at=at(2026, 2, 1)
    )
    make_subscription(db_session, a, mrr_minor=9900, started_at=at(2026, 2, 1))
    make_subscription(db_session, b, mrr_minor=5000, currency="EUR", started_at=at(2026, 1, 15))
    assert service.mrr_at(db_session=db_session, at=at(2026, 1, 20)) == {"USD": 2900, "EUR": 5000}
    assert service.mrr_at(db_session=db_session, at=at(2026, 2, 1)) == {"USD": 9900, "EUR": 5000}
    # the upgrade is not churn: a is active at both ends of February
    churn = service.logo_churn(db_session=db_session, start=at(2026, 2, 1), end=at(2026, 3, 1))
    assert (churn.at_start, churn.lost) == (2, 0)
    current = service.current_subscriptions(
        db_session=db_session, customer_ids=[a.id, b.id], at=at(2026, 2, 10)
    )
    assert [s.mrr_minor for s in current[a.id]] == [9900]


def test_logo_churn_product_worked_example(db_session: Session) -> None:
    """PRODUCT.md: 150 customers at the start, 5 lost during the month -> 3.3%."""
    for i in range(150):
        c = make_customer(db_session)
        ended = at(2026, 3, 10 + i % 5) if i < 5 else None
        make_subscription(db_session, c, started_at=at(2026, 1, 1), ended_at=ended)
    # a customer who joins mid-month and leaves is not in the start cohort
    late = make_customer(db_session)
    make_subscription(db_session, late, started_at=at(2026, 3, 5), ended_at=at(2026, 3, 20))
    churn = service.logo_churn(db_session=db_session, start=at(2026, 3, 1), end=at(2026, 4, 1))
    assert (churn.at_start, churn.lost) == (150, 5)
    assert churn.rate == pytest.approx(5 / 150)
    assert round(churn.rate * 100, 1) == 3.3


def test_logo_churn_with_nobody_at_start(db_session: Session) -> None:
    churn = service.logo_churn(db_session=db_session, start=at(2020, 1, 1), end=at(2020, 2, 1))
    assert churn.at_start == 0 and churn.rate is None


def test_customer_history_ordering(db_session: Session) -> None:
    c = make_customer(db_session)
    s2 = make_subscription(db_session, c, started_at=at(2026, 2, 1))
    s1 = make_subscription(db_session, c, started_at=at(2026, 1, 1), ended_at=at(2026, 2, 1))
    assert [s.id for s in service.subscriptions_of(db_session=db_session, customer_id=c.id)] == [
        s1.id,
        s2.id,
    ]


def test_trials_are_not_paying_customers(db_session: Session) -> None:
    from keepwell.billing.models import SubscriptionStatus

    c = make_customer(db_session)
    make_subscription(
        db_session,
        c,
        mrr_minor=0,
        status=SubscriptionStatus.trialing,
        started_at=at(2026, 1, 1),
        ended_at=at(2026, 1, 15),
    )
    make_subscription(db_session, c, mrr_minor=4900, started_at=at(2026, 1, 15))
    t = make_customer(db_session)  # a trial that never converts
    make_subscription(
        db_session,
        t,
        mrr_minor=0,
        status=SubscriptionStatus.trialing,
        started_at=at(2026, 1, 20),
        ended_at=at(2026, 2, 3),
    )
    assert service.active_customer_count(db_session=db_session, at=at(2026, 1, 10)) == 0
    assert service.active_customer_count(db_session=db_session, at=at(2026, 1, 25)) == 1
    churn = service.logo_churn(db_session=db_session, start=at(2026, 2, 1), end=at(2026, 3, 1))
    assert (churn.at_start, churn.lost) == (1, 0)
    current = service.current_subscriptions(
        db_session=db_session, customer_ids=[t.id], at=at(2026, 1, 25)
    )
    assert current[t.id][0].status is SubscriptionStatus.trialing  # still shown as a trial
