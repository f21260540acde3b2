"""The shop demo: BG/NBD-style repeat purchases, Gamma-Gamma spend, returns, browsing, surveys."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .conftest import END, Demo


def _orders(demo: Demo) -> pd.DataFrame:
    orders = demo["orders"].copy()
    orders["at"] = pd.to_datetime(orders.ordered_at, utc=True)
    return orders


def test_every_customer_orders_at_sign_up(shop_demo: Demo) -> None:
    orders = _orders(shop_demo)
    first = orders.groupby("customer_id").at.min()
    signup = pd.to_datetime(shop_demo["customers"].set_index("external_id").signup_at, utc=True)
    gap = (first - signup.loc[first.index]).dt.total_seconds()
    assert len(first) == len(signup)
    assert gap.between(0, 600).all()


def test_purchase_rates_and_spend_are_heterogeneous_and_follow_the_truth(shop_demo: Demo) -> None:
    orders = _orders(shop_demo)
    truth = shop_demo["truth"].set_index("customer_id")
    count = orders.groupby("customer_id").size()
    assert count.max() >= 15 and (count == 1).mean() > 0.2  # heavy buyers and one-timers

    signup = pd.to_datetime(shop_demo["customers"].set_index("external_id").signup_at, utc=True)
    years = (pd.Timestamp(END, tz="UTC") - signup).dt.days / 365.25
    old = years[years > 1].index
    rate = truth.purchase_rate_per_year.loc[old]
    repeat = (count.loc[old] - 1) / years.loc[old]
    assert rate.rank().corr(repeat.rank()) > 0.4  # Spearman: real rate drives repeat orders
    assert (truth.repeat_orders.loc[count.index] == count - 1).all()

    completed = orders[orders.status == "completed"]
    mean_value = completed.groupby("customer_id").amount_minor.mean()
    frequent = mean_value[count.loc[mean_value.index] >= 4].index
    expected = truth.mean_order_value_minor.loc[frequent]
    assert expected.rank().corr(mean_value.loc[frequent].rank()) > 0.6
    # Gamma-Gamma: spend does not depend on frequency.
    assert abs(count.loc[mean_value.index].rank().corr(mean_value.rank())) < 0.15


def test_dropped_out_customers_never_order_again(shop_demo: Demo) -> None:
    orders = _orders(shop_demo)
    truth = shop_demo["truth"]
    gone = truth[truth.churned].set_index("customer_id")
    assert 0.05 < truth.churned.mean() < 0.6
    last = orders.groupby("customer_id").at.max().loc[gone.index]
    assert (last == pd.to_datetime(gone.churned_at, utc=True)).all()
    events = shop_demo["events"]
    after = events.merge(
        gone.churned_at.rename("dropped").reset_index(), on="customer_id", how="inner"
    )
    assert (after.occurred_at <= pd.to_datetime(after.dropped, utc=True)).all()


def test_refunds_categories_and_items(shop_demo: Demo) -> None:
    orders = _orders(shop_demo)
    status = orders.status.value_counts(normalize=True)
    assert 0.02 < status["refunded"] < 0.1 and 0.005 < status["cancelled"] < 0.05
    assert orders.category.nunique() == 8
    assert (orders["items"] >= 1).all()
    assert (orders.currency == "EUR").all()
    refunds = orders.groupby("category").status.apply(lambda s: (s == "refunded").mean())
    assert refunds["apparel"] > refunds["electronics"]


def test_browsing_events_and_purchases(shop_demo: Demo) -> None:
    events = shop_demo["events"]
    orders = _orders(shop_demo)
    purchases = events[events.event == "purchase"]
    assert len(purchases) == len(orders)
    assert np.allclose(
        np.sort(purchases.value.to_numpy()),
        np.sort(orders.amount_minor.to_numpy() / 100),
        atol=0.01,
    )
    assert {"page_view", "product_view", "add_to_cart", "search"} <= set(events.event)
    assert (events.user_id == events.customer_id).all()
    hour = events.occurred_at.dt.hour  # customers mostly in Europe/Americas: not a flat day
    assert hour.value_counts(normalize=True).max() > 1.5 / 24


def test_surveys_are_few_and_refunds_lower_scores(shop_demo: Demo) -> None:
    surveys = shop_demo["surveys"]
    orders = _orders(shop_demo)
    assert 0.05 < len(surveys) / len(orders) < 0.2
    assert set(surveys.kind) == {"nps", "csat"}
    refunders = set(orders.customer_id[orders.status == "refunded"])
    nps = surveys[surveys.kind == "nps"]
    assert nps.score[nps.customer_id.isin(refunders)].mean() < nps.score.mean()
