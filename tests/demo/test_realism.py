"""The SaaS demo behaves like a business: churn rates, plan moves, payments, and real signal.

Everything here is measured from the *imported* files only (never from truth.csv), as a
churn model would see them, except where the test says it checks the truth.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from keepwell.demo.generator import generate

from .conftest import END, Demo

DAY = pd.Timedelta(days=1)
PLAN_ORDER = {"starter": 0, "pro": 1, "business": 2, "enterprise": 3}


def _rows(demo: Demo) -> pd.DataFrame:
    subs = demo["subscriptions"].copy()
    subs["start"] = pd.to_datetime(subs.started_at, utc=True)
    subs["end"] = pd.to_datetime(subs.ended_at, utc=True)
    return subs.sort_values(["customer_id", "start"])


def _active(subs: pd.DataFrame, at: pd.Timestamp) -> set[str]:
    running = (subs.start <= at) & (subs.end.isna() | (subs.end > at))
    return set(subs.customer_id[running])


def monthly_churn(demo: Demo) -> pd.DataFrame:
    """Start-cohort logo churn per calendar month over paid (non-trial) subscription rows."""
    subs = _rows(demo)
    paid = subs[subs.status != "trialing"]
    months = pd.date_range(subs.start.min().ceil("D"), pd.Timestamp(END, tz="UTC"), freq="MS")
    rows = []
    for start, end in itertools.pairwise(months):
        base = _active(paid, start)
        lost = base - _active(subs, end)
        rows.append((start, len(base), len(lost)))
    return pd.DataFrame(rows, columns=["month", "base", "lost"])


def rank_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U / (n1 n0))."""
    ranks = pd.Series(score).rank().to_numpy()
    n1 = int(label.sum())
    n0 = len(label) - n1
    return float((ranks[label == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def usage_windows(demo: Demo, seed: int = 3) -> pd.DataFrame:
    """Events per day in the 60 days before a reference instant and in the 90 days before that.

    The reference is the churn instant for customers who churned once after >= 150 days as
    paying customers, and a random instant for customers who never churned.
    """
    truth = demo["truth"]
    subs = _rows(demo)
    first = subs.groupby("customer_id").start.min()
    end = pd.Timestamp(END, tz="UTC")
    rng = np.random.default_rng(seed)
    churned = truth[(truth.churn_count == 1) & (truth.churn_cause != "trial_expired")]
    churned = pd.DataFrame(
        {"customer_id": churned.customer_id, "ref": pd.to_datetime(churned.churned_at, utc=True)}
    )
    kept = truth[~truth.churned].customer_id
    earliest = first.loc[kept] + 150 * DAY
    kept = kept[(earliest < end).to_numpy()]
    span = (end - first.loc[kept] - 150 * DAY).dt.total_seconds().to_numpy()
    at = first.loc[kept] + 150 * DAY + pd.to_timedelta(rng.random(len(kept)) * span, unit="s")
    stayed = pd.DataFrame({"customer_id": kept.to_numpy(), "ref": at.reset_index(drop=True)})
    reference = pd.concat([churned.assign(churned=1), stayed.assign(churned=0)], ignore_index=True)
    reference = reference[(reference.ref - reference.customer_id.map(first)) >= 150 * DAY]

    events = demo["events"][["customer_id", "occurred_at"]].merge(reference, on="customer_id")
    before = (events.ref - events.occurred_at) / DAY
    events["recent"] = (before > 0) & (before <= 60)
    events["earlier"] = (before > 60) & (before <= 150)
    counts = events.groupby("customer_id")[["recent", "earlier"]].sum()
    out = reference.set_index("customer_id").join(counts).fillna(0.0)
    out["recent"] /= 60
    out["earlier"] /= 90
    return out


def test_monthly_logo_churn_is_realistic(saas_demo: Demo) -> None:
    churn = monthly_churn(saas_demo)
    settled = churn[churn.base >= 200]  # months with a sizeable base
    rate = settled.lost.sum() / settled.base.sum()
    assert 0.01 <= rate <= 0.06
    assert len(settled) >= 10


def test_plan_moves_reactivations_and_failed_payments_all_happen(saas_demo: Demo) -> None:
    subs = _rows(saas_demo)
    previous = subs.groupby("customer_id")[["plan", "end"]].shift()
    change = previous.plan.notna() & (previous.end == subs.start) & (previous.plan != subs.plan)
    step = subs.plan.map(PLAN_ORDER) - previous.plan.map(PLAN_ORDER)
    assert (change & (step > 0)).sum() >= 30  # upgrades
    assert (change & (step < 0)).sum() >= 15  # downgrades
    assert (previous.end < subs.start).sum() >= 15  # reactivations after a gap
    assert subs.cancel_reason.notna().sum() >= 200
    assert (subs.status == "trialing").sum() >= 300
    assert (subs.billing_period == "year").sum() >= 100

    invoices = saas_demo["invoices"]
    assert (invoices.status == "failed").sum() >= 20
    assert (invoices.attempt_count > 1).sum() >= 100
    assert invoices.failure_reason.notna().sum() >= 100
    late = pd.to_datetime(invoices.paid_at, utc=True) > pd.to_datetime(invoices.due_at, utc=True)
    assert late.sum() >= 50
    assert {"open", "overdue"} <= set(invoices.status)


def test_failed_payments_precede_involuntary_churn(saas_demo: Demo) -> None:
    subs = _rows(saas_demo)
    involuntary = subs[subs.cancel_reason == "payment_failed"]
    failed = saas_demo["invoices"]
    failed = failed[failed.status == "failed"]
    assert len(involuntary) >= 20
    assert set(involuntary.customer_id) <= set(failed.customer_id)  # retries exhausted first


def test_crisis_industries_churn_and_downgrade_thriving_ones_upgrade(saas_demo: Demo) -> None:
    customers = saas_demo["customers"].set_index("external_id")
    subs = _rows(saas_demo)
    last_year = pd.Timestamp(END, tz="UTC") - pd.DateOffset(months=7)
    paid = subs[subs.status != "trialing"]
    base = _active(paid, last_year)
    lost = base - _active(subs, pd.Timestamp(END, tz="UTC") - DAY)
    industry = customers.industry
    rate = {
        group: len([c for c in lost if industry[c] in names])
        / len([c for c in base if industry[c] in names])
        for group, names in {
            "crisis": ("travel", "hospitality"),
            "thriving": ("healthcare", "delivery"),
        }.items()
    }
    assert rate["crisis"] > 1.5 * rate["thriving"]

    moves = subs.groupby("customer_id")[["plan"]].shift()
    recent = subs.start >= last_year
    down = (moves.plan.map(PLAN_ORDER) > subs.plan.map(PLAN_ORDER)) & recent
    up = (moves.plan.map(PLAN_ORDER) < subs.plan.map(PLAN_ORDER)) & recent
    hit = subs.customer_id.map(industry).isin(["travel", "hospitality"])
    thriving = subs.customer_id.map(industry).isin(["healthcare", "delivery"])
    assert down[hit].mean() > down[~hit].mean()
    assert up[thriving].mean() > up[~thriving].mean()


def test_starter_churns_more_than_enterprise(saas_demo: Demo) -> None:
    truth = saas_demo["truth"]
    share = truth.groupby("plan_at_signup").churned.mean()
    assert share["starter"] > 2 * share["enterprise"]


def test_usage_falls_before_churn(saas_demo: Demo) -> None:
    windows = usage_windows(saas_demo)
    churners, stayers = windows[windows.churned == 1], windows[windows.churned == 0]
    assert len(churners) >= 80 and len(stayers) >= 300

    own = (churners.recent + 0.01) / (churners.earlier + 0.01)
    assert own.median() < 0.8  # churners use the product less than they used to
    assert churners.recent.mean() < 0.5 * stayers.recent.mean()
    stayers_ratio = (stayers.recent + 0.01) / (stayers.earlier + 0.01)
    assert stayers_ratio.median() > 0.9

    decline = -np.log((windows.recent + 0.05) / (windows.earlier + 0.05))
    label = windows.churned.to_numpy()
    assert rank_auc(decline.to_numpy(), label) > 0.6
    assert rank_auc(-windows.recent.to_numpy(), label) > 0.65


def test_detractors_and_bad_tickets_go_with_churn(saas_demo: Demo) -> None:
    truth = saas_demo["truth"].set_index("customer_id")
    surveys = saas_demo["surveys"]
    nps = surveys[surveys.kind == "nps"]
    churned = truth.churned.loc[nps.customer_id].to_numpy()
    assert nps.score[churned].mean() < nps.score[~churned].mean()
    promoters, detractors = (nps.score >= 9).mean(), (nps.score <= 6).mean()
    assert 0 < 100 * (promoters - detractors) < 60

    tickets = saas_demo["tickets"]
    urgent = tickets.priority.isin(["high", "urgent"])
    by_churn = urgent.groupby(truth.churned.loc[tickets.customer_id].to_numpy()).mean()
    assert by_churn[True] > by_churn[False]


def test_usage_frequency_spans_daily_to_less_than_monthly(saas_demo: Demo) -> None:
    events = saas_demo["events"]
    active_days = events.assign(day=events.occurred_at.dt.floor("D")).groupby("customer_id").day
    span = (pd.Timestamp(END, tz="UTC") - active_days.min()) / DAY
    per_month = active_days.nunique() / np.maximum(span, 1) * 30
    classes = pd.cut(per_month, [0, 1, 4, 15, 31], labels=["rarely", "monthly", "weekly", "daily"])
    shares = classes.value_counts(normalize=True)
    assert (shares > 0.05).all(), shares


def test_truth_causes_match_what_the_files_show(saas_demo: Demo) -> None:
    truth = saas_demo["truth"]
    causes = truth.churn_cause.value_counts()
    for cause in ("usage_decline", "payment_failure", "trial_expired", "random"):
        assert causes.get(cause, 0) >= 10, cause
    subs = _rows(saas_demo)
    last = subs.groupby("customer_id").tail(1).set_index("customer_id")
    paid_fail = truth[truth.churn_cause == "payment_failure"].customer_id
    gone = truth.set_index("customer_id").status_at_end[paid_fail] == "churned"
    still_gone = paid_fail[gone.to_numpy()]
    reasons = last.cancel_reason.loc[still_gone]
    assert reasons.isin(["payment_failed", "billing problems", "too expensive"]).all()
    assert (reasons == "payment_failed").mean() > 0.5


@pytest.mark.slow
def test_fifty_thousand_customers_keep_the_same_shape(tmp_path) -> None:
    demo = Demo(generate(tmp_path, customers=50_000, end=END, events_per_customer_day=0.3))
    churn = monthly_churn(demo)
    settled = churn[churn.base >= 2_000]
    assert 0.01 <= settled.lost.sum() / settled.base.sum() <= 0.06
    windows = usage_windows(demo)
    label = windows.churned.to_numpy()
    assert rank_auc(-windows.recent.to_numpy(), label) > 0.65
