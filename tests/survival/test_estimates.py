"""Kaplan-Meier, log-rank, Cox and remaining lifetime against hand-computed small cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import WeibullFitter
from lifelines.utils import restricted_mean_survival_time

from keepwell.errors import InvalidInput
from keepwell.survival import service as S


def lifetimes_frame(durations, churned, **attrs) -> pd.DataFrame:
    n = len(durations)
    churned = np.asarray(churned, dtype=bool)
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "duration_days": np.asarray(durations, dtype="float64"),
            "churned": churned,
            "active": ~churned,
            "tenure_days": np.where(churned, np.nan, durations).astype("float64"),
        }
    )
    for name, values in attrs.items():
        df[name] = values
    return df


# 6 customers: churn at 2, 3, 5, 8; still active (censored) at 3 and 6.
SIX = lifetimes_frame([2, 3, 3, 5, 6, 8], [1, 1, 0, 1, 0, 1])


def test_kaplan_meier_hand_computed() -> None:
    result = S.km_curves(SIX)
    c = result.curves.set_index("days")
    # S(2) = 5/6; S(3) = 5/6 * 4/5; S(5) = 2/3 * 2/3 (3 at risk); S(8) = 0 (1 at risk)
    expected = {0: 1.0, 2: 5 / 6, 3: 2 / 3, 5: 4 / 9, 6: 4 / 9, 8: 0.0}
    for t, s in expected.items():
        assert c.loc[float(t), "survival"] == pytest.approx(s)
    assert c.loc[5.0, "at_risk"] == 3 and c.loc[8.0, "at_risk"] == 1
    inside = c.loc[[2.0, 3.0, 5.0]]
    assert (inside["lower"] < inside["survival"]).all() and (
        inside["survival"] < inside["upper"]
    ).all()
    row = result.summary.iloc[0]
    assert row.segment == "all" and row.customers == 6 and row.churned == 4
    assert row.median_days == 5.0  # first time S <= 0.5
    assert result.logrank is None


def test_median_not_reached_and_horizon_columns() -> None:
    data = lifetimes_frame([10, 400, 400, 400], [1, 0, 0, 0])
    row = S.km_curves(data).summary.iloc[0]
    assert row.median_days is None and row.median_months is None
    assert row.survival_3m == pytest.approx(0.75) and row.survival_24m is None


def test_logrank_separates_clearly_different_groups() -> None:
    rng = np.random.default_rng(1)
    fast = rng.exponential(30, 60)
    slow = rng.exponential(300, 60)
    data = lifetimes_frame(
        np.r_[fast, slow], np.ones(120), plan=["starter"] * 60 + ["enterprise"] * 60
    )
    result = S.km_curves(data, by="plan")
    assert result.logrank["p_value"] < 1e-6 and result.logrank["degrees_of_freedom"] == 1
    assert list(result.summary["segment"]) == ["enterprise", "starter"]
    assert result.pairwise.iloc[0]["p_value"] < 1e-6
    same = lifetimes_frame(
        np.r_[fast, rng.permutation(fast)], np.ones(120), plan=["a"] * 60 + ["b"] * 60
    )
    assert S.km_curves(same, by="plan").logrank["p_value"] > 0.05


def test_cox_hazard_ratios_reference_and_standardising() -> None:
    rng = np.random.default_rng(7)
    n = 400
    plan = np.where(rng.random(n) < 0.6, "pro", "starter")
    seats = rng.integers(1, 50, n).astype(float)
    rate = np.where(plan == "starter", 3.0, 1.0) / 200
    durations = rng.exponential(1 / rate)
    data = lifetimes_frame(
        durations,
        np.ones(n),
        plan=plan,
        attr_seats=[str(int(s)) for s in seats],
        country=["XX"] * 3 + ["DE"] * (n - 3),
        region=["eu"] * n,
    )
    result = S.cox_model(data, covariates=["plan", "attr_seats", "country", "region"])
    t = result.table.set_index("term")
    assert t.loc["plan=starter", "reference"] == "plan=pro"  # most common level
    assert 2.2 < t.loc["plan=starter", "hr"] < 4.0 and t.loc["plan=starter", "p_value"] < 1e-6
    assert t.loc["attr_seats", "reference"].startswith("per 1 sd = ")
    assert 0.8 < t.loc["attr_seats", "hr"] < 1.25  # no effect
    assert t.loc["country=(other)", "reference"] == "country=DE"  # XX merged: too rare
    assert "region" not in set(result.table["covariate"])  # a single level: left out
    assert any("merged" in n for n in result.notes) and any(
        "single level" in n for n in result.notes
    )
    assert 0.5 < result.concordance < 1 and result.churned == n


def test_remaining_lifetime_km_hand_computed() -> None:
    got = S.remaining_lifetime(SIX).set_index("customer_id")
    # active: c2 (tenure 3) and c4 (tenure 6); tau = 8 where S reaches 0
    # (RMST(8) - RMST(3)) / S(3) = (2 * 2/3 + 3 * 4/9) / (2/3) = 4
    # (RMST(8) - RMST(6)) / S(6) = (2 * 4/9) / (4/9) = 2
    assert got.loc["c2", "remaining_days"] == pytest.approx(4.0)
    assert got.loc["c4", "remaining_days"] == pytest.approx(2.0)
    assert got.loc["c2", "until_days"] == 8.0 and got.loc["c2", "restricted"]
    assert got.loc["c2", "remaining_months"] == pytest.approx(4.0 / (365.25 / 12))


def test_remaining_lifetime_weibull_matches_lifelines_rmst() -> None:
    rng = np.random.default_rng(3)
    durations = rng.weibull(0.8, 300) * 200
    churned = durations < 250
    data = lifetimes_frame(np.minimum(durations, 250), churned)
    got = S.remaining_lifetime(data, method="weibull", horizon_days=1000)
    wf = WeibullFitter().fit(data["duration_days"].clip(lower=1 / 24), data["churned"])
    for row in got.head(3).itertuples():
        a, u = row.tenure_days, row.tenure_days + 1000
        s_a = float(wf.predict(a))
        oracle = (
            restricted_mean_survival_time(wf, t=u) - restricted_mean_survival_time(wf, t=a)
        ) / s_a
        assert row.remaining_days == pytest.approx(oracle, abs=0.05)
        assert not row.restricted


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: S.km_curves(SIX, by="colour"), "unknown segment attribute 'colour'"),
        (lambda: S.km_curves(SIX, alpha=1.5), "alpha"),
        (lambda: S.km_curves(SIX.iloc[0:0]), "no customer lifetimes"),
        (lambda: S.km_curves(SIX, min_customers=10), "no segment has at least 10"),
        (lambda: S.remaining_lifetime(SIX, method="magic"), "unknown method"),
        (lambda: S.remaining_lifetime(SIX, horizon_days=0), "horizon"),
        (
            lambda: S.remaining_lifetime(lifetimes_frame([5, 9], [0, 0])),
            "has no churn",
        ),
        (lambda: S.cox_model(SIX, covariates=[]), "no covariates"),
        (lambda: S.cox_model(SIX.assign(plan="x"), covariates=["plan"]), "no usable covariate"),
        (lambda: S.cox_model(SIX.assign(plan="x"), covariates=["nope"]), "unknown segment"),
        (
            lambda: S.cox_model(SIX.assign(n=[1, 2, 3, 4, 5, 6]), covariates=["n"], penalizer=-1),
            "penalizer",
        ),
    ],
)
def test_bad_input(call, match) -> None:
    with pytest.raises(InvalidInput, match=match):
        call()
