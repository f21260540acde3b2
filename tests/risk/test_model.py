"""Estimators: time split, fit/predict contracts, calibration, SHAP contributions, artifacts."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from keepwell.errors import InvalidInput, NotFound
from keepwell.risk.artifacts import list_models, load_model, models_dir, save_model
from keepwell.risk.model import (
    GradientBoostingRiskModel,
    LogisticRiskModel,
    RecencyBaseline,
    time_split,
)
from tests.risk.conftest import synthetic


def months(*days: str) -> list[date]:
    return [date.fromisoformat(d) for d in days]


def test_time_split_purges_the_label_window() -> None:
    dates = months("2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01", "2026-04-01")
    early, late = time_split(dates, later=1, gap_days=0)
    assert early.tolist() == [True, True, True, False, False]
    assert late.tolist() == [False, False, False, True, True]
    # with a 37-day gap, March (label known on April 7) cannot train a model tested in April
    early, _ = time_split(dates, later=1, gap_days=37)
    assert early.tolist() == [True, True, False, False, False]
    early, late = time_split(dates, later=0.5, gap_days=0)  # 2 of 4 distinct dates
    assert late.sum() == 3 and early.sum() == 2


@pytest.mark.parametrize(
    ("later", "gap", "match"),
    [(4, 0, "cannot split"), (0, 0, "cannot split"), (1.5, 0, "share"), (1, 200, "no observ")],
)
def test_time_split_refuses_impossible_splits(later, gap, match) -> None:
    dates = months("2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01")
    with pytest.raises(InvalidInput, match=match):
        time_split(dates, later=later, gap_days=gap)


@pytest.fixture(scope="module")
def split():
    obs = synthetic(customers=500, months=10, seed=1)
    train_mask, test_mask = time_split(obs.frame["as_of"], later=3, gap_days=0)
    return obs.where(train_mask), obs.where(test_mask)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRiskModel(),
        lambda: LogisticRiskModel(calibration="sigmoid"),
        lambda: GradientBoostingRiskModel(),
        lambda: GradientBoostingRiskModel(calibration="isotonic", calibration_share=0.3),
        lambda: GradientBoostingRiskModel(calibration=None),
    ],
    ids=["logistic", "logistic-sigmoid", "lgbm-sigmoid", "lgbm-isotonic", "lgbm-raw"],
)
def test_models_learn_the_cause(split, make) -> None:
    train, test = split
    model = make()
    assert model.fit(train.X, train.y) is model
    p = model.predict_proba(test.X)
    assert p.shape == (len(test.frame), 2)
    assert np.allclose(p.sum(axis=1), 1) and (p >= 0).all() and (p <= 1).all()
    assert roc_auc_score(test.y, p[:, 1]) > 0.75  # the synthetic cause is learnable
    assert model.features_ == train.features and model.categorical_ == ["industry"]
    assert 0 < model.base_rate_ < 0.2
    assert "fitted on" in repr(model)
    if model.calibration:
        assert model.n_calibration_ > 0 and model.n_train_ < len(train.frame)


def test_calibration_uses_the_latest_dates_only(split) -> None:
    train, _ = split
    model = GradientBoostingRiskModel(calibration_share=0.15, gap_days=31)
    model.fit(train.X, train.y)
    # 7 training months: the last one calibrates, the one before is purged (label window)
    per_month = len(train.frame) // 7
    assert model.n_calibration_ == per_month and model.n_train_ == 5 * per_month


def test_fit_errors_are_clear(split) -> None:
    train, _ = split
    with pytest.raises(InvalidInput, match="only retained"):
        GradientBoostingRiskModel(calibration=None).fit(train.X, np.zeros(len(train.frame)))
    with pytest.raises(InvalidInput, match="0 or 1"):
        LogisticRiskModel().fit(train.X, np.full(len(train.frame), 2))
    with pytest.raises(InvalidInput, match="rows"):
        LogisticRiskModel().fit(train.X, train.y[:-1])
    with pytest.raises(InvalidInput, match="as_of"):
        GradientBoostingRiskModel().fit(train.X.drop(columns="as_of"), train.y)
    with pytest.raises(InvalidInput, match="calibration"):
        GradientBoostingRiskModel(calibration="magic").fit(train.X, train.y)
    with pytest.raises(InvalidInput, match="not fitted"):
        GradientBoostingRiskModel().predict_proba(train.X)
    with pytest.raises(InvalidInput, match="C must be"):
        LogisticRiskModel(C=0)


def test_lightgbm_contributions_are_shap_values(split) -> None:
    train, test = split
    model = GradientBoostingRiskModel(calibration=None).fit(train.X, train.y)
    contrib = model.contributions(test.X.head(50))
    assert list(contrib.columns) == [*model.features_, "bias"]
    raw = model.pipeline_.predict_proba(test.X.head(50))[:, 1]
    assert np.allclose(contrib.sum(axis=1), np.log(raw / (1 - raw)), atol=1e-6)
    # the causes carry the weight
    top = model.feature_importance().head(4).index
    assert "failed_invoices_90" in top


def test_unseen_category_and_column_order_are_handled(split) -> None:
    train, test = split
    model = GradientBoostingRiskModel(calibration=None).fit(train.X, train.y)
    X = test.X.head(20).copy()
    X["industry"] = "space tourism"  # never seen in training
    shuffled = X[list(reversed(X.columns))]
    assert np.allclose(model.predict_proba(X), model.predict_proba(shuffled))


def test_recency_baseline_ranks_by_days() -> None:
    X = pd.DataFrame(
        {"as_of": [date(2026, 1, 1)] * 6, "days_since_last_event": [1, 2, 3, 30, 60, None]}
    )
    y = np.array([0, 0, 0, 1, 1, 1])
    model = RecencyBaseline().fit(X, y)
    assert model.ranking_score(X).tolist() == [1, 2, 3, 30, 60, 100_000]
    p = model.churn_probability(X)
    assert p.tolist() == [0, 0, 0, 1, 1, 1]  # isotonic fit of a perfectly separated rule
    with pytest.raises(InvalidInput, match="days_since_last_event"):
        model.ranking_score(X.drop(columns="days_since_last_event"))


def test_artifacts_round_trip(settings, split) -> None:
    train, test = split
    model = GradientBoostingRiskModel().fit(train.X, train.y)
    meta = {"features": model.features_, "horizon_days": 30, "metrics": {"auc": 0.8}}
    with pytest.raises(NotFound, match="no trained risk model"):
        load_model(settings=settings)
    first = save_model(model, settings=settings, metadata=meta)
    second = save_model(LogisticRiskModel().fit(train.X, train.y), settings=settings, metadata=meta)
    loaded = load_model(settings=settings, version=first.version)
    assert np.array_equal(loaded.model.predict_proba(test.X), model.predict_proba(test.X))
    assert loaded.metadata["features"] == model.features_
    assert loaded.metadata["estimator"] == "GradientBoostingRiskModel"
    assert {"lightgbm", "scikit-learn", "python"} <= set(loaded.metadata["versions"])
    on_disk = json.loads((first.path / "metadata.json").read_text())
    assert on_disk["model_version"] == first.version and first.path.parent == models_dir(settings)
    # newest by default; listing is oldest first
    assert load_model(settings=settings).version == second.version
    assert [m["model_version"] for m in list_models(settings)] == [first.version, second.version]
    with pytest.raises(NotFound, match="no risk model version"):
        load_model(settings=settings, version="nope")
    with pytest.raises(InvalidInput, match="JSON"):
        save_model(model, settings=settings, metadata={"when": date(2026, 1, 1)})
    assert len(list_models(settings)) == 2  # the failed save left nothing behind
    assert not [p for p in models_dir(settings).iterdir() if p.name.startswith(".tmp")]
