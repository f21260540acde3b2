"""Revenue metrics: MRR movements, NRR/GRR, LTV, cost of churn, repeat revenue share.

Expected values are computed by hand in the comments (the same numbers as
``docs/metrics/revenue.md``); one test checks movements against a naive pandas oracle.
"""

from __future__ import annotations

import doctest
from datetime import date

import numpy as np
import pandas as pd
import pytest

from keepwell.errors import InvalidInput
from keepwell.metrics import revenue
from keepwell.metrics.revenue import (
    cost_of_churn,
    ltv,
    mrr_movements,
    repeat_revenue_share,
    revenue_retention,
)
from tests.metrics.conftest import subs, ts

MAR = dict(start=date(2026, 3, 1), end=date(2026, 4, 1))


def run(src, builder, index=("currency", "period"), **kw) -> pd.DataFrame:
    return src.con.execute(builder(src, **kw)).set_index(list(index))


def in_currencies(*rows: tuple) -> pd.DataFrame:
    """Subscription rows (currency, customer_id, started_at, ended_at|None, mrr_minor)."""
    df = subs(*[row[1:] for row in rows])
    df["currency"] = [row[0] for row in rows]
    return df


# The worked example of docs/metrics/revenue.md (USD, grace 7 days). MRR at Mar 1 and Apr 1:
#   a  1000 -> 1000  up to 3000 on Mar 10, back to 1000 on Mar 20: nets to no movement
#   b  2000 -> 5000  expansion 3000
#   c  4000 -> 1500  contraction 2500
#   d  2500 ->    0  churned 2500
#   e     0 ->  700  new (first paid Mar 8)
#   f     0 -> 1200  reactivation (paid Jan-Feb 10, back Mar 3: gap 21 days > grace)
#   g   800 ->  800  gap Mar 5 - Mar 9 within grace: nothing happened, MRR carried
#   h   600 ->  900  left Mar 4, back Mar 25 at 900: churn and return in one period = expansion 300
#   i     0 -> 1100  free trial (MRR 0) since Feb 20, pays from Mar 6: new (never paid before)
#   j   300 ->    0  ends exactly Apr 1 00:00: churned in March (the period ending there)
#   k   400 ->  400  starts exactly Mar 1 00:00: new in February, in force at March's d0
EXAMPLE = subs(
    ("a", "2026-01-01", "2026-03-10", 1000),
    ("a", "2026-03-10", "2026-03-20", 3000),
    ("a", "2026-03-20", None, 1000),
    ("b", "2026-01-01", "2026-03-15", 2000),
    ("b", "2026-03-15", None, 5000),
    ("c", "2026-01-01", "2026-03-05", 4000),
    ("c", "2026-03-05", None, 1500),
    ("d", "2026-01-01", "2026-03-12", 2500),
    ("e", "2026-03-08", None, 700),
    ("f", "2026-01-01", "2026-02-10", 900),
    ("f", "2026-03-03", None, 1200),
    ("g", "2026-01-01", "2026-03-05", 800),
    ("g", "2026-03-09", None, 800),
    ("h", "2026-01-01", "2026-03-04", 600),
    ("h", "2026-03-25", None, 900),
    ("i", "2026-02-20", "2026-03-06", 0, "free"),
    ("i", "2026-03-06", None, 1100),
    ("j", "2026-01-01", "2026-04-01", 300),
    ("k", "2026-03-01", None, 400),
)


def test_mrr_movements_worked_example(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    out = run(src, mrr_movements, start=date(2026, 2, 1), end=date(2026, 4, 1))
    mar = out.loc["USD", "2026-03"]
    assert (mar.mrr_start, mar.mrr_end) == (11600, 12600)
    assert (mar.customers_start, mar.customers_end) == (8, 9)
    assert (mar.new, mar.reactivation, mar.expansion) == (1800, 1200, 3300)
    assert (mar.contraction, mar.churned) == (2500, 2800)
    counts = ("new", "reactivated", "expanded", "contracted", "churned")
    assert tuple(mar[f"customers_{c}"] for c in counts) == (2, 1, 2, 1, 2)
    assert mar.net_new_mrr == 1000 == mar.mrr_end - mar.mrr_start
    assert mar.gross_mrr_churn_rate == pytest.approx(5300 / 11600)
    assert mar.net_mrr_churn_rate == pytest.approx(2000 / 11600)
    assert mar.quick_ratio == pytest.approx(6300 / 5300)
    assert mar.arpa == pytest.approx(1400.0)
    # February: f churns (900), k starts exactly at d1 = Mar 1 and is February's new MRR.
    feb = out.loc["USD", "2026-02"]
    assert (feb.mrr_start, feb.mrr_end, feb.churned, feb.new) == (12100, 11600, 900, 400)
    assert (feb.expansion, feb.contraction, feb.reactivation) == (0, 0, 0)


def test_one_report_computes_movements_and_trailing_churn_once(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    args = {"start": date(2026, 2, 1), "end": date(2026, 4, 1)}
    alone = run(src, mrr_movements, **args)
    ltv1 = run(src, ltv, **args)
    run(src, cost_of_churn, **args)
    shared = [k[0] for k in src.extra["shared_tables"]]
    # mrr, ltv and cost of churn read one movements table and one trailing-churn table
    assert shared.count("mrr_movements") == 1 and shared.count("trailing_churn") == 1
    pd.testing.assert_frame_equal(run(src, mrr_movements, **args), alone)
    quarterly = run(src, mrr_movements, **{**args, "period": "quarter"})  # other parameters
    assert [k[0] for k in src.extra["shared_tables"]].count("mrr_movements") == 2
    assert list(quarterly.index.get_level_values("period")) == ["2026-Q1"]  # not 2 months
    fresh = make_sources({"subscriptions": EXAMPLE})  # same answers without the memo
    pd.testing.assert_frame_equal(run(fresh, ltv, **args), ltv1)


def test_gap_within_grace_across_a_boundary_carries_mrr(make_sources) -> None:
    # Leaves Mar 29, back Apr 3 (gap 5 days <= 7): MRR 1000 carries over Apr 1 -- no churn
    # in March, no reactivation in April. Without grace, both happen.
    rows = subs(("a", "2026-01-01", "2026-03-29", 1000), ("a", "2026-04-03", None, 1000))
    src = make_sources({"subscriptions": rows})
    span = dict(start=date(2026, 3, 1), end=date(2026, 5, 1))
    grace = run(src, mrr_movements, **span)
    assert grace.loc["USD", "2026-03"].mrr_end == 1000
    assert grace.churned.sum() == 0 and grace.reactivation.sum() == 0
    none = run(src, mrr_movements, **span, grace_days=0)
    assert (none.loc["USD", "2026-03"].churned, none.loc["USD", "2026-04"].reactivation) == (
        1000,
        1000,
    )


def test_zero_mrr_at_start_gives_null_rates(make_sources) -> None:
    src = make_sources({"subscriptions": subs(("a", "2026-03-10", None, 1000))})
    out = run(src, mrr_movements, start=date(2026, 2, 1), end=date(2026, 4, 1))
    feb, mar = out.loc["USD", "2026-02"], out.loc["USD", "2026-03"]
    assert (feb.mrr_start, feb.mrr_end, feb.customers_end) == (0, 0, 0)
    assert all(pd.isna(feb[c]) for c in ("gross_mrr_churn_rate", "quick_ratio", "arpa"))
    assert (mar.mrr_start, mar.new, mar.net_new_mrr, mar.arpa) == (0, 1000, 1000, 1000.0)
    assert pd.isna(mar.gross_mrr_churn_rate) and pd.isna(mar.net_mrr_churn_rate)
    assert pd.isna(mar.quick_ratio)  # no losses: no ratio


def test_currencies_are_kept_apart(make_sources) -> None:
    # x switches from EUR to USD on Mar 15: EUR loses 1000, USD gains 1200 as a
    # reactivation (x had MRR before, in another currency).
    frames = in_currencies(
        ("EUR", "x", "2026-01-01", "2026-03-15", 1000),
        ("EUR", "y", "2026-01-01", None, 500),
        ("USD", "x", "2026-03-15", None, 1200),
        ("USD", "z", "2026-01-01", None, 700),
    )
    src = make_sources({"subscriptions": frames})
    out = run(src, mrr_movements, **MAR)
    eur, usd = out.loc["EUR", "2026-03"], out.loc["USD", "2026-03"]
    assert (eur.mrr_start, eur.mrr_end, eur.churned, eur.customers_end) == (1500, 500, 1000, 1)
    assert (usd.mrr_start, usd.mrr_end, usd.reactivation, usd.new) == (700, 1900, 1200, 0)
    assert usd.arpa == pytest.approx(950.0)


def test_annual_plan_mrr_is_already_monthly(make_sources) -> None:
    # An annual plan of 120,000 a year is stored as MRR 10,000; it ends Mar 1 2026 00:00.
    src = make_sources({"subscriptions": subs(("a", "2025-03-01", "2026-03-01", 10000, "annual"))})
    out = run(src, mrr_movements, start=date(2026, 1, 1), end=date(2026, 4, 1))
    assert (out.loc["USD", "2026-01"].mrr_start, out.loc["USD", "2026-01"].mrr_end) == (
        10000,
        10000,
    )
    assert out.loc["USD", "2026-02"].churned == 10000  # the change at Mar 1 belongs to February
    assert out.loc["USD", "2026-03"].mrr_start == 0


def test_periods_follow_the_reporting_time_zone(make_sources) -> None:
    # 2026-02-28T23:30Z is Mar 1 00:30 in Berlin: new in March there, in February in UTC.
    rows = subs(("a", "2026-02-28T23:30", None, 1000))
    berlin = run(
        make_sources({"subscriptions": rows}, timezone="Europe/Berlin"),
        mrr_movements,
        start=date(2026, 2, 1),
        end=date(2026, 4, 1),
    )
    assert (berlin.loc["USD", "2026-02"].new, berlin.loc["USD", "2026-03"].new) == (0, 1000)
    utc = run(make_sources({"subscriptions": rows}), mrr_movements, **MAR)
    assert (utc.loc["USD", "2026-03"].mrr_start, utc.loc["USD", "2026-03"].new) == (1000, 0)


def _random_subscriptions(seed: int, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = ts("2025-10-01") + pd.Timedelta(days=int(rng.integers(0, 200)))
        for _ in range(int(rng.integers(1, 4))):
            length = pd.Timedelta(days=int(rng.integers(5, 120)))
            end = None if rng.random() < 0.2 else t + length
            rows.append(
                (f"c{i}", str(t), str(end) if end else None, int(rng.choice([0, 900, 2900])))
            )
            if end is None:
                break
            t = end + pd.Timedelta(days=int(rng.choice([0, 0, 3, 20])))
    return subs(*rows)


def _oracle(frame: pd.DataFrame, d0: pd.Timestamp, d1: pd.Timestamp) -> dict[str, int]:
    """Naive per-customer movements without grace bridging."""

    def mrr(c, t):
        open_at_t = frame.ended_at.isna() | (t < frame.ended_at)
        rows = frame[(frame.customer_id == c) & (frame.started_at <= t) & open_at_t]
        return int(rows.mrr_minor.sum())

    out = dict.fromkeys(["new", "reactivation", "expansion", "contraction", "churned"], 0)
    for c in frame.customer_id.unique():
        m0, m1 = mrr(c, d0), mrr(c, d1)
        paid_before = (
            (frame.customer_id == c) & (frame.mrr_minor > 0) & (frame.started_at < d0)
        ).any()
        if m0 == 0 < m1:
            out["reactivation" if paid_before else "new"] += m1
        elif 0 < m0 < m1:
            out["expansion"] += m1 - m0
        elif 0 < m1 < m0:
            out["contraction"] += m0 - m1
        elif m0 > 0 == m1:
            out["churned"] += m0
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_movements_match_a_naive_oracle_and_chain(make_sources, seed) -> None:
    frame = _random_subscriptions(seed)
    src = make_sources({"subscriptions": frame})
    out = src.con.execute(
        mrr_movements(src, start=date(2025, 10, 1), end=date(2026, 6, 1), grace_days=0)
    )
    assert len(out) == 8
    assert (out.net_new_mrr == out.mrr_end - out.mrr_start).all()
    assert (out.mrr_end.iloc[:-1].to_numpy() == out.mrr_start.iloc[1:].to_numpy()).all()
    for row in out.itertuples():
        expected = _oracle(frame, row.period_start, row.period_end)
        got = {k: getattr(row, k) for k in expected}
        assert got == expected, row.period


def test_breakdown_keeps_customers_without_a_value(make_sources) -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "signup_at": pd.to_datetime(["2026-01-01"] * 3),
            "industry": ["travel", None, "travel"],
        }
    )
    tags = pd.DataFrame({"customer_id": ["a"], "tag": ["vip"]})
    rows = subs(
        ("a", "2026-01-01", None, 1000),
        ("b", "2026-01-01", "2026-03-10", 2000),
        ("c", "2026-01-01", "2026-03-10", 3000),
    )
    src = make_sources({"customers": customers, "customer_tags": tags, "subscriptions": rows})
    out = src.con.execute(mrr_movements(src, **MAR, by=["industry"]))
    travel = out[out.industry == "travel"].iloc[0]
    unknown = out[out.industry.isna()].iloc[0]
    assert (travel.mrr_start, travel.churned) == (4000, 3000)
    assert (unknown.mrr_start, unknown.churned, unknown.customers_churned) == (2000, 2000, 1)
    vip = run(src, mrr_movements, **MAR, filters={"tag": "vip"}).loc["USD", "2026-03"]
    assert (vip.mrr_start, vip.churned) == (1000, 0)


def test_revenue_retention_worked_example(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    mar = run(src, revenue_retention, **MAR).loc["USD", "2026-03"]
    # Cohort at Mar 1: a b c d g h j k (11600). At Apr 1: 1000+5000+1500+0+800+900+0+400.
    assert (mar.customers_start, mar.customers_retained) == (8, 6)
    assert (mar.mrr_start, mar.mrr_end, mar.mrr_retained) == (11600, 9600, 6300)
    assert mar.nrr == pytest.approx(9600 / 11600)
    assert mar.grr == pytest.approx(6300 / 11600)
    # Two-month window for March: cohort at Feb 1 = a b c d f g h j (12100); e, i, k are new.
    two = run(src, revenue_retention, **MAR, window_months=2).loc["USD", "2026-03"]
    assert two.window_start == ts("2026-02-01")
    assert (two.mrr_start, two.mrr_end, two.mrr_retained) == (12100, 10400, 6800)
    assert two.nrr == pytest.approx(10400 / 12100)
    # Trailing 12 months: nobody paid on 2025-04-01, so there is no cohort and no rate.
    year = run(src, revenue_retention, **MAR, window_months=12).loc["USD", "2026-03"]
    assert (year.customers_start, year.mrr_start) == (0, 0)
    assert pd.isna(year.nrr) and pd.isna(year.grr)


def test_nrr_above_one_grr_capped(make_sources) -> None:
    src = make_sources(
        {
            "subscriptions": subs(
                ("a", "2026-01-01", "2026-03-10", 1000),
                ("a", "2026-03-10", None, 3000),
                ("b", "2026-01-01", None, 1000),
            )
        }
    )
    mar = run(src, revenue_retention, **MAR).loc["USD", "2026-03"]
    assert (mar.nrr, mar.grr) == (pytest.approx(2.0), pytest.approx(1.0))


# Ten customers at 1000 since Dec 1; one leaves in each of Jan, Feb, Mar (on the 10th);
# n0 joins Feb 15 at 2000. Customers at the start of Jan/Feb/Mar: 10, 9, 9 (8 + n0); lost 1 each.
LTV_ROWS = subs(
    *[(f"c{i}", "2025-12-01", f"2026-0{i + 1}-10" if i < 3 else None, 1000) for i in range(10)],
    ("n0", "2026-02-15", None, 2000),
)


def test_ltv_states_its_churn_window(make_sources) -> None:
    src = make_sources({"subscriptions": LTV_ROWS})
    mar = run(src, ltv, **MAR).loc["USD", "2026-03"]
    # ARPA at Apr 1 = (7 x 1000 + 2000) / 8 = 1125; churn over Jan-Mar = 3 / 28.
    assert mar.arpa == pytest.approx(1125.0)
    assert (mar.churn_window_start, mar.churn_window_end) == (ts("2026-01-01"), ts("2026-04-01"))
    assert mar.churn_window_months == 3
    assert mar.monthly_churn_rate == pytest.approx(3 / 28)
    assert mar.expected_lifetime_months == pytest.approx(28 / 3)
    assert mar.ltv == pytest.approx(1125 * 0.8 * 28 / 3) == 8400
    one = run(src, ltv, **MAR, churn_window_months=1, margin=0.5).loc["USD", "2026-03"]
    assert one.monthly_churn_rate == pytest.approx(1 / 9)
    assert one.ltv == pytest.approx(1125 * 0.5 * 9)


def test_ltv_by_segment_keeps_customers_without_a_value(make_sources) -> None:
    # c0, c1 and n0 have no industry: at the start of Jan/Feb/Mar 2, 1, 1 of them, 2 lost:
    # churn 2/4, ARPA n0's 2000, LTV 2000 x 0.8 x 2. Travel (c2..c9): 8, 8, 8, 1 lost (c2).
    ids = [f"c{i}" for i in range(10)] + ["n0"]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_at": pd.to_datetime(["2025-12-01"] * 11),
            "industry": [None if c in ("c0", "c1", "n0") else "travel" for c in ids],
        }
    )
    src = make_sources({"customers": customers, "subscriptions": LTV_ROWS})
    out = src.con.execute(ltv(src, **MAR, by=["industry"]))
    unknown = out[out.industry.isna()].iloc[0]
    travel = out[out.industry == "travel"].iloc[0]
    assert unknown.monthly_churn_rate == pytest.approx(0.5)
    assert unknown.ltv == pytest.approx(3200)
    assert travel.monthly_churn_rate == pytest.approx(1 / 24)
    assert travel.ltv == pytest.approx(1000 * 0.8 * 24)


def test_ltv_is_null_without_churn(make_sources) -> None:
    src = make_sources({"subscriptions": LTV_ROWS})
    dec = run(src, ltv, start=date(2025, 12, 1), end=date(2026, 1, 1)).loc["USD", "2025-12"]
    assert dec.monthly_churn_rate == 0.0  # 10 customers, none lost in Oct-Dec
    assert pd.isna(dec.expected_lifetime_months) and pd.isna(dec.ltv)
    assert dec.arpa == pytest.approx(1000.0)


def test_weekly_ltv_uses_whole_months_before_the_week_end(make_sources) -> None:
    src = make_sources({"subscriptions": LTV_ROWS})
    out = run(src, ltv, start=date(2026, 3, 2), end=date(2026, 3, 9), period="week")
    week = out.loc["USD", "2026-W10"]  # ends Mon Mar 9: window Dec, Jan, Feb
    assert (week.churn_window_start, week.churn_window_end) == (
        ts("2025-12-01"),
        ts("2026-03-01"),
    )
    assert week.monthly_churn_rate == pytest.approx(2 / 29)  # 10 + 10 + 9 at start, 2 lost


def test_cost_of_churn_product_example(make_sources) -> None:
    """PRODUCT.md: 15 lost x 30k profit per customer = 450k a month."""
    rows = [(f"s{i}", "2025-12-01", "2026-01-20" if i < 15 else None, 1000) for i in range(500)]
    rows += [(f"n{i}", "2026-01-10", "2026-01-25" if i < 4 else None, 1000) for i in range(200)]
    src = make_sources({"subscriptions": subs(*rows)})
    jan = dict(start=date(2026, 1, 1), end=date(2026, 2, 1), grace_days=0)
    out = run(src, cost_of_churn, **jan, profit_per_customer_minor=30_000, churn_window_months=1)
    row = out.loc["USD", "2026-01"]
    assert row.customers_lost == 15
    assert row.lost_profit == 450_000
    # Lost MRR x expected lifetime x margin: 15,000 x (1 / 0.03) x 0.8 = 400,000.
    assert row.churned_mrr == 15_000
    assert row.monthly_churn_rate == pytest.approx(0.03)
    assert row.lost_lifetime_value == pytest.approx(400_000)
    # Default profit per customer: ARPA at d0 x margin = 1000 x 0.8.
    default = run(src, cost_of_churn, **jan).loc["USD", "2026-01"]
    assert default.profit_per_customer == pytest.approx(800.0)
    assert default.lost_profit == pytest.approx(12_000)


ORDERS = pd.DataFrame.from_records(
    [
        ("a", "2026-01-10", 1000, "USD", "completed"),  # a's first
        ("a", "2026-02-05", 2000, "USD", "completed"),  # repeat
        ("a", "2026-02-20", 500, "USD", "refunded"),  # not counted
        ("b", "2026-02-01", 3000, "USD", "completed"),  # b's first, at Feb's d0
        ("b", "2026-02-01", 1000, "USD", "completed"),  # same instant: also a first order
        ("b", "2026-02-10", 4000, "USD", "completed"),  # repeat
        ("c", "2025-12-15", 700, "USD", "completed"),  # before the range
        ("c", "2026-01-31T23:59", 800, "USD", "completed"),  # repeat, still January
        ("e", "2026-01-05", 900, "USD", "refunded"),  # refunded: not a first order
        ("e", "2026-01-06", 900, "USD", "completed"),  # e's first completed order
        ("d", "2026-02-03", 5000, "EUR", "completed"),
        ("d", "2026-02-04", 6000, "EUR", "completed"),  # repeat
    ],
    columns=["customer_id", "ordered_at", "amount_minor", "currency", "status"],
).assign(ordered_at=lambda df: pd.to_datetime(df.ordered_at, format="ISO8601"))


def test_repeat_revenue_share(make_sources) -> None:
    src = make_sources({"orders": ORDERS})
    out = run(src, repeat_revenue_share, start=date(2026, 1, 1), end=date(2026, 3, 1))
    jan, feb = out.loc["USD", "2026-01"], out.loc["USD", "2026-02"]
    assert (jan.orders, jan.customers, jan.repeat_customers) == (3, 3, 1)
    assert (jan.revenue, jan.repeat_revenue) == (2700, 800)
    assert jan.repeat_revenue_share == pytest.approx(800 / 2700)
    assert (feb.orders, feb.customers, feb.repeat_customers) == (4, 2, 2)
    assert (feb.revenue, feb.repeat_revenue, feb.repeat_revenue_share) == (10000, 6000, 0.6)
    eur_jan, eur_feb = out.loc["EUR", "2026-01"], out.loc["EUR", "2026-02"]
    assert (eur_jan.orders, eur_jan.revenue) == (0, 0) and pd.isna(eur_jan.repeat_revenue_share)
    assert (eur_feb.revenue, eur_feb.repeat_revenue, eur_feb.repeat_customers) == (11000, 6000, 1)


@pytest.mark.parametrize(
    ("builder", "kw", "field"),
    [
        (ltv, {"margin": 1.5}, "margin"),
        (ltv, {"margin": 0}, "margin"),
        (ltv, {"churn_window_months": 0}, "churn_window_months"),
        (revenue_retention, {"window_months": 1.5}, "window_months"),
        (cost_of_churn, {"profit_per_customer_minor": -1}, "profit_per_customer_minor"),
        (cost_of_churn, {"profit_per_customer_minor": 12.5}, "profit_per_customer_minor"),
        (mrr_movements, {"grace_days": -1}, "grace_days"),
        (mrr_movements, {"by": ["password"]}, "by"),
    ],
)
def test_bad_parameters_are_named(make_sources, builder, kw, field) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    with pytest.raises(InvalidInput) as err:
        builder(src, **MAR, **kw)
    assert err.value.field == field


def test_docstring_examples_run() -> None:
    result = doctest.testmod(revenue)
    assert result.attempted >= 1 and result.failed == 0
