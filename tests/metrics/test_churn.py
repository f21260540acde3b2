"""Customer churn and retention: hand-computed cases including PRODUCT.md's worked examples."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from keepwell.errors import InvalidInput
from keepwell.metrics.churn import customer_churn, scale_churn
from tests.metrics.conftest import subs


def run(src, **kw) -> pd.DataFrame:
    return src.con.execute(customer_churn(src, **kw)).set_index("period")


def test_start_cohort_churn_150_customers_5_lost(make_sources) -> None:
    """PRODUCT.md: 150 customers at the start, 5 lost -> 3.3%."""
    rows = [
        (f"c{i}", "2026-01-01", f"2026-03-1{i % 5}" if i < 5 else None, 1000) for i in range(150)
    ]
    src = make_sources({"subscriptions": subs(*rows)})
    out = run(src, start=date(2026, 3, 1), end=date(2026, 4, 1))
    row = out.loc["2026-03"]
    assert (row.customers_start, row.start_lost, row.customers_end) == (150, 5, 145)
    assert round(row.churn_rate * 100, 1) == 3.3
    assert row.retention_rate == pytest.approx(145 / 150)


def test_total_churn_two_months_product_example(make_sources) -> None:
    """PRODUCT.md: 500 at start, 15 lost (3.0%), 200 new of whom 4 lost: 19/500 = 3.8%.
    Next month starts with 681: 20 lost (2.9%), 300 new, 5 of them lost: 25/681 = 3.67%."""
    rows = []
    for i in range(500):  # January's starting customers
        end = "2026-01-20" if i < 15 else ("2026-02-20" if i < 35 else None)
        rows.append((f"s{i}", "2025-12-01", end, 1000))
    for i in range(200):  # January's new customers
        end = "2026-01-25" if i < 4 else None
        rows.append((f"n{i}", "2026-01-10", end, 1000))
    for i in range(300):  # February's new customers
        end = "2026-02-25" if i < 5 else None
        rows.append((f"f{i}", "2026-02-10", end, 1000))
    src = make_sources({"subscriptions": subs(*rows)})
    out = run(src, start=date(2026, 1, 1), end=date(2026, 3, 1), grace_days=0)
    jan, feb = out.loc["2026-01"], out.loc["2026-02"]
    assert (jan.customers_start, jan.start_lost, jan.new, jan.total_lost) == (500, 15, 200, 19)
    assert jan.churn_rate == pytest.approx(0.03)
    assert jan.total_churn_rate == pytest.approx(0.038)
    assert jan.customers_end == 681
    assert (feb.customers_start, feb.start_lost, feb.new, feb.total_lost) == (681, 20, 300, 25)
    assert round(feb.churn_rate * 100, 1) == 2.9
    assert round(feb.total_churn_rate * 100, 2) == 3.67
    assert feb.customers_end == 681 - 20 + 300 - 5


def test_churn_and_reactivation_in_the_same_period(make_sources) -> None:
    # a: leaves Mar 5, back Mar 20 (gap 15 days > grace 7): churned AND reactivated in March,
    #    but active at both ends, so not a start-cohort loss.
    # b: leaves Mar 5, back Mar 9 (gap 4 days <= grace): nothing happened.
    # c: leaves Feb 10, back Mar 15: reactivated in March.
    src = make_sources(
        {
            "subscriptions": subs(
                ("a", "2026-01-01", "2026-03-05", 1000),
                ("a", "2026-03-20", None, 1000),
                ("b", "2026-01-01", "2026-03-05", 1000),
                ("b", "2026-03-09", None, 1000),
                ("c", "2026-01-01", "2026-02-10", 1000),
                ("c", "2026-03-15", None, 1000),
            )
        }
    )
    mar = run(src, start=date(2026, 3, 1), end=date(2026, 4, 1)).loc["2026-03"]
    assert (mar.customers_start, mar.customers_end) == (2, 3)
    assert (mar.new, mar.reactivated, mar.churned) == (0, 2, 1)
    assert (mar.start_lost, mar.total_lost) == (0, 0)
    assert mar.churn_rate == 0.0
    no_grace = run(src, start=date(2026, 3, 1), end=date(2026, 4, 1), grace_days=0).loc["2026-03"]
    assert (no_grace.reactivated, no_grace.churned) == (3, 2)


def test_upgrade_is_not_churn_and_boundaries_belong_to_the_period_they_end(make_sources) -> None:
    src = make_sources(
        {
            "subscriptions": subs(
                ("up", "2026-01-01", "2026-02-01", 2900, "starter"),
                ("up", "2026-02-01", None, 9900, "pro"),
                (
                    "gone",
                    "2026-01-01",
                    "2026-02-01",
                    2900,
                ),  # ends exactly at the boundary: January churn
                (
                    "late",
                    "2026-02-01",
                    None,
                    2900,
                ),  # starts exactly Feb 1 00:00: seen at d1 of January
            )
        }
    )
    out = run(src, start=date(2026, 1, 1), end=date(2026, 3, 1))
    jan, feb = out.loc["2026-01"], out.loc["2026-02"]
    assert (jan.customers_start, jan.start_lost, jan.churned, jan.new) == (2, 1, 1, 1)
    assert jan.customers_end == 2  # up, late
    assert (feb.customers_start, feb.start_lost, feb.new, feb.churned) == (2, 0, 0, 0)


def test_zero_customers_at_start_gives_null_rates(make_sources) -> None:
    src = make_sources({"subscriptions": subs(("a", "2026-03-10", None, 1000))})
    out = run(src, start=date(2026, 2, 1), end=date(2026, 4, 1))
    feb, mar = out.loc["2026-02"], out.loc["2026-03"]
    assert feb.customers_start == 0 and pd.isna(feb.churn_rate)
    assert (mar.customers_start, mar.new, mar.customers_end) == (0, 1, 1)
    assert pd.isna(mar.total_churn_rate)


def test_breakdown_and_filter(make_sources) -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "signup_at": pd.to_datetime(["2026-01-01"] * 3),
            "industry": ["travel", "travel", "health"],
        }
    )
    tags = pd.DataFrame({"customer_id": ["a", "c", "c"], "tag": ["vip", "vip", "beta"]})
    src = make_sources(
        {
            "customers": customers,
            "customer_tags": tags,
            "subscriptions": subs(
                ("a", "2026-01-01", "2026-03-10", 1),
                ("b", "2026-01-01", None, 1),
                ("c", "2026-01-01", None, 1),
            ),
        }
    )
    by_ind = src.con.execute(
        customer_churn(src, start=date(2026, 3, 1), end=date(2026, 4, 1), by=["industry"])
    ).set_index("industry")
    assert by_ind.loc["travel"].start_lost == 1 and by_ind.loc["travel"].customers_start == 2
    assert by_ind.loc["health"].start_lost == 0
    vip = run(src, start=date(2026, 3, 1), end=date(2026, 4, 1), filters={"tag": "vip"})
    assert vip.loc["2026-03"].customers_start == 2
    by_tag = src.con.execute(
        customer_churn(src, start=date(2026, 3, 1), end=date(2026, 4, 1), by=["tag"])
    ).set_index("tag")
    assert by_tag.loc["vip"].customers_start == 2 and by_tag.loc["beta"].customers_start == 1
    with pytest.raises(InvalidInput, match="unknown by field 'password'"):
        customer_churn(src, start=date(2026, 3, 1), end=date(2026, 4, 1), by=["password"])


def test_weekly_periods_in_a_time_zone(make_sources) -> None:
    # Berlin is UTC+1 in January: local midnight of Mon Jan 12 is 2026-01-11T23:00Z.
    src = make_sources(
        {
            "subscriptions": subs(
                ("a", "2025-12-01", "2026-01-11T23:30", 1),
                ("b", "2025-12-01", "2026-01-11T22:30", 1),
            )
        },
        timezone="Europe/Berlin",
    )
    out = run(src, start=date(2026, 1, 5), end=date(2026, 1, 19), period="week")
    assert list(out.index) == ["2026-W02", "2026-W03"]
    assert out.loc["2026-W02"].start_lost == 1  # b left before local midnight
    assert out.loc["2026-W03"].start_lost == 1  # a left after it


def test_scale_churn() -> None:
    assert scale_churn(0.02, periods=12) == pytest.approx(1 - 0.98**12)
    assert scale_churn(scale_churn(0.05, periods=12), periods=1 / 12) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        scale_churn(1.5, periods=12)


def test_breakdown_keeps_customers_with_no_value(make_sources) -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "signup_at": pd.to_datetime(["2026-01-01"] * 2),
            "industry": ["travel", None],
        }
    )
    src = make_sources(
        {
            "customers": customers,
            "subscriptions": subs(
                ("a", "2026-01-01", None, 1), ("b", "2026-01-01", "2026-03-10", 1)
            ),
        }
    )
    out = src.con.execute(
        customer_churn(src, start=date(2026, 3, 1), end=date(2026, 4, 1), by=["industry"])
    )
    unknown = out[out["industry"].isna()].iloc[0]
    assert (unknown.customers_start, unknown.start_lost) == (1, 1)


def test_unknown_period_is_a_clear_error(make_sources) -> None:
    src = make_sources({"subscriptions": subs(("a", "2026-01-01", None, 1))})
    with pytest.raises(InvalidInput, match="unknown period 'fortnight'"):
        customer_churn(src, start=date(2026, 3, 1), end=date(2026, 4, 1), period="fortnight")


def test_churn_from_usage_for_businesses_without_subscriptions(make_sources) -> None:
    # a: events Jan 5 and Feb 20 -> active until Mar 22, so lost in March (30-day window)
    # b: event Mar 10 only -> new in March, still active at Apr 1
    events = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "event": ["login"] * 3,
            "occurred_at": pd.to_datetime(["2026-01-05", "2026-02-20", "2026-03-10"]),
            "user_id": [None] * 3,
            "value": [None] * 3,
        }
    )
    src = make_sources({"events": events})
    out = run(src, start=date(2026, 3, 1), end=date(2026, 4, 1), activity="events")
    mar = out.loc["2026-03"]
    assert (mar.customers_start, mar.start_lost, mar.new, mar.customers_end) == (1, 1, 1, 1)
    with pytest.raises(InvalidInput, match="unknown activity"):
        customer_churn(src, start=date(2026, 3, 1), end=date(2026, 4, 1), activity="vibes")
