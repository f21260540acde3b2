"""Subscription LTV and the orders the repeat-purchase model reads (hand-made stores)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from keepwell.clv import service
from keepwell.errors import InvalidInput, NotFound
from keepwell.survival.service import expected_lifetimes

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


@pytest.fixture
def subs_src(make_sources):
    rows = []
    for i in range(12):
        start = ts("2025-01-01") + pd.Timedelta(days=20 * i)
        end = start + pd.Timedelta(days=60 + 15 * i) if i % 3 == 0 else None
        rows.append((f"c{i:02d}", "pro", 1000 * (i + 1), "USD", start, end))
    subs = pd.DataFrame(
        rows, columns=["customer_id", "plan", "mrr_minor", "currency", "started_at", "ended_at"]
    )
    return make_sources({"subscriptions": subs})


def test_subscription_ltv_is_remaining_months_x_mrr_x_margin(subs_src) -> None:
    got = service.subscription_ltv(subs_src, margin=0.5, method="km", as_of=AS_OF)
    life = expected_lifetimes(subs_src, method="km", as_of=AS_OF).set_index("customer_id")
    assert len(got) == len(life) == 8  # the 8 customers still active
    for r in got.itertuples():
        expected = life.loc[r.customer_id, "remaining_months"] * r.mrr_minor * 0.5
        assert r.ltv_minor == round(expected)
        assert r.mrr_minor == life.loc[r.customer_id, "mrr_now"]
    assert got["ltv_minor"].is_monotonic_decreasing
    weibull = service.subscription_ltv(subs_src, as_of=AS_OF)
    assert (weibull["ltv_minor"] > 0).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"margin": 0}, "margin"), ({"margin": 1.5}, "margin"), ({"horizon_years": 0}, "horizon")],
)
def test_subscription_ltv_bad_input(subs_src, kwargs, match) -> None:
    with pytest.raises(InvalidInput, match=match):
        service.subscription_ltv(subs_src, **kwargs)


def test_order_transactions_statuses_currencies_and_cut_off(make_sources) -> None:
    orders = pd.DataFrame(
        [
            ("a", ts("2026-01-01"), 1000, "EUR", "completed"),
            ("a", ts("2026-02-01"), 2000, "EUR", "refunded"),
            ("a", ts("2026-03-01"), 3000, "EUR", "cancelled"),
            ("b", ts("2026-01-05"), 4000, "USD", "completed"),
            ("b", ts("2026-07-01"), 5000, "EUR", "completed"),  # after the cut-off
        ],
        columns=["customer_id", "ordered_at", "amount_minor", "currency", "status"],
    )
    src = make_sources({"orders": orders})
    with pytest.raises(InvalidInput, match=r"2 currencies \['EUR', 'USD'\]"):
        service.order_transactions(src, as_of=AS_OF)
    tx, cur = service.order_transactions(src, as_of=AS_OF, currency="EUR")
    assert cur == "EUR" and tx["amount"].tolist() == [1000.0]
    with pytest.raises(InvalidInput, match="no completed orders in GBP"):
        service.order_transactions(src, as_of=AS_OF, currency="GBP")
    with pytest.raises(InvalidInput, match="no completed orders"):
        service.order_transactions(make_sources({}), as_of=AS_OF)


def test_values_need_a_fitted_model(settings, subs_src) -> None:
    with pytest.raises(NotFound, match="no fitted repeat-purchase model"):
        service.repeat_purchase_values(settings=settings, sources=subs_src)
