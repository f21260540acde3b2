"""Evaluation: hand-computed lift (with ties), calibration table, the out-of-time comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keepwell.errors import InvalidInput
from keepwell.risk.evaluate import (
    calibration_table,
    evaluate_models,
    score_metrics,
    top_decile_lift,
)
from keepwell.risk.model import LogisticRiskModel
from tests.risk.conftest import synthetic


@pytest.mark.parametrize(
    ("y", "score", "lift"),
    [
        # 20 rows, 2 churners, both ranked first: top 2 rows hold 2 of 2 -> rate 1 / 0.1
        ([1, 1] + [0] * 18, list(range(20, 0, -1)), 10.0),
        # one churner in the top 2: 0.5 / 0.1
        ([1, 0, 1] + [0] * 17, list(range(20, 0, -1)), 5.0),
        # churners ranked last: nothing in the top decile
        ([0] * 18 + [1, 1], list(range(20, 0, -1)), 0.0),
        # all scores tied: the top decile gets the average rate -> lift 1
        ([1, 1] + [0] * 18, [7] * 20, 1.0),
        # 4 rows tied at the cut (share 1 of them is in the top 2); 1 churner among them:
        # top 2 = the first row (a churner) + 1 x 1/4 churners -> 1.25 / 2 / 0.1
        ([1, 1, 0, 0, 0] + [0] * 15, [9, 5, 5, 5, 5] + [1] * 15, 6.25),
    ],
)
def test_top_decile_lift_hand_computed(y, score, lift) -> None:
    assert top_decile_lift(np.array(y), np.array(score)) == pytest.approx(lift)


def test_top_decile_lift_without_churners_is_undefined() -> None:
    assert math.isnan(top_decile_lift(np.zeros(10), np.arange(10)))


def test_calibration_table_groups() -> None:
    p = np.linspace(0.01, 0.2, 20)
    y = np.array([0] * 18 + [1, 1])
    table = calibration_table(y, p, groups=4)
    assert table["group"].tolist() == [1, 2, 3, 4] and table["n"].tolist() == [5] * 4
    assert table["mean_predicted"].is_monotonic_increasing
    assert table["observed_rate"].tolist() == [0, 0, 0, 0.4] and table["churned"].sum() == 2


def test_score_metrics_on_a_perfect_ranking() -> None:
    y = np.array([0, 0, 0, 1])
    m = score_metrics(y, np.array([0.1, 0.2, 0.3, 0.9]), np.array([0, 0, 0, 1.0]))
    assert m["auc"] == 1 and m["pr_auc"] == 1 and m["brier"] == 0


@pytest.fixture(scope="module")
def evaluation():
    return evaluate_models(synthetic(customers=400, months=10, seed=2), test_dates=3)


def test_out_of_time_comparison(evaluation) -> None:
    ev = evaluation
    # 10 monthly dates: 3 tested; the date before them is purged (horizon 30 + grace 7 days)
    assert len(ev.test_dates) == 3 and len(ev.train_dates) == 6
    assert ev.train_dates[-1] < ev.test_dates[0]
    assert ev.n_test == 3 * 400 and ev.n_train == 6 * 400
    m = ev.metrics.set_index("model")
    assert list(m.index) == ["lightgbm", "logistic", "recency", "base_rate"]
    # the synthetic churn is caused by payments, usage falls and NPS: learnable, and
    # "days since last activity" knows only part of it
    assert m.loc["lightgbm", "auc"] > m.loc["recency", "auc"] + 0.1
    assert m.loc["lightgbm", "brier"] < m.loc["base_rate", "brier"]
    assert m.loc["base_rate", "top_decile_lift"] == 1
    assert set(ev.calibration) == {"lightgbm", "logistic", "recency"}
    assert ev.calibration["lightgbm"]["n"].sum() == ev.n_test
    assert list(ev.predictions.columns) == [
        "customer_id",
        "as_of",
        "churned",
        "lightgbm",
        "logistic",
        "recency",
    ]
    summary = ev.summary()
    assert summary["metrics"]["lightgbm"]["auc"] == m.loc["lightgbm", "auc"]
    assert summary["n_test"] == ev.n_test


def test_evaluation_needs_both_outcomes() -> None:
    obs = synthetic(customers=50, months=6, seed=3)
    obs.frame["churned"] = obs.frame["churned"] * 0
    with pytest.raises(InvalidInput, match="no churned"):
        evaluate_models(obs, test_dates=2, models={"logistic": LogisticRiskModel()})
    with pytest.raises(InvalidInput, match="cannot split"):
        evaluate_models(obs, test_dates=6)
