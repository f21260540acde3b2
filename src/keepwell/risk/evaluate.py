"""How good is a churn-risk model? Out-of-time metrics against two baselines.

Models are trained on the earlier observation dates and scored on the later ones
(:func:`keepwell.risk.model.time_split`, with the label window purged between them), then:

* **AUC** (ROC): probability that a random churner is ranked above a random stayer (0.5 =
  chance).
* **PR-AUC** (average precision): area under precision/recall; chance = the base rate.
* **Top-decile lift** = churn rate among the 10 % ranked riskiest / overall churn rate (1 =
  chance). Ties at the cut are shared pro rata, so a coarse score (whole days) gets its
  expected lift, not a lucky or unlucky ordering.
* **Brier score** = mean (p - y)^2 of the probabilities (lower is better). The reference row
  ``base rate`` predicts the test slice's own churn rate for everyone (p(1 - p)).
* **Calibration table**: observations in ten equal groups by predicted probability, with the
  mean prediction and the observed churn rate of each.

Ranking metrics use each model's ``ranking_score`` (the probability; for the recency rule the
day count itself), probability metrics its ``churn_probability``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from keepwell.errors import InvalidInput
from keepwell.risk.dataset import Observations
from keepwell.risk.model import (
    GradientBoostingRiskModel,
    LogisticRiskModel,
    RecencyBaseline,
    time_split,
)

__all__ = [
    "Evaluation",
    "calibration_table",
    "default_models",
    "evaluate_models",
    "score_metrics",
    "top_decile_lift",
]

Progress = Callable[[str, int, int], None]

MODEL_NAMES = {
    "lightgbm": "LightGBM (gradient boosting)",
    "logistic": "logistic regression",
    "recency": "days since last activity",
    "base_rate": "base rate",
}


def top_decile_lift(y: np.ndarray, score: np.ndarray, *, share: float = 0.1) -> float:
    """Churn rate in the top ``share`` by score / overall churn rate (ties shared pro rata).

    >>> top_decile_lift(np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), np.arange(10, 0, -1))
    10.0
    """
    y = np.asarray(y, dtype="float64")
    score = np.asarray(score, dtype="float64")
    n = len(y)
    if n == 0 or y.sum() == 0:
        return float("nan")
    k = share * n
    order = np.argsort(-score, kind="stable")
    s, t = score[order], y[order]
    cut = s[min(int(np.ceil(k)) - 1, n - 1)]
    above = s > cut
    tied = s == cut
    n_above = above.sum()
    hits = t[above].sum() + (k - n_above) * t[tied].mean()
    return float((hits / k) / y.mean())


def calibration_table(y: np.ndarray, p: np.ndarray, *, groups: int = 10) -> pd.DataFrame:
    """Observations in ``groups`` equal-size groups by predicted probability (1 = lowest).

    Columns: group, n, mean_predicted, observed_rate, churned.
    """
    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    ranks = pd.Series(p).rank(method="first").to_numpy()
    bins = np.ceil(ranks * groups / len(p)).astype(int)
    frame = pd.DataFrame({"group": bins, "p": p, "y": y})
    out = frame.groupby("group").agg(
        n=("y", "size"),
        mean_predicted=("p", "mean"),
        observed_rate=("y", "mean"),
        churned=("y", "sum"),
    )
    out["churned"] = out["churned"].astype("int64")
    return out.reset_index()


def score_metrics(y: np.ndarray, score: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC and top-decile lift of ``score``; Brier score of probabilities ``p``."""
    y = np.asarray(y)
    both = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, score)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, score)) if both else float("nan"),
        "top_decile_lift": top_decile_lift(y, score),
        "brier": float(brier_score_loss(y, p)),
    }


def default_models(*, gap_days: int, random_state: int = 0) -> dict[str, Any]:
    """The compared models: LightGBM (calibrated), the logistic baseline, the recency rule."""
    return {
        "lightgbm": GradientBoostingRiskModel(gap_days=gap_days, random_state=random_state),
        "logistic": LogisticRiskModel(),
        "recency": RecencyBaseline(),
    }


@dataclass
class Evaluation:
    """The out-of-time comparison.

    Attributes:
        metrics: one row per model (``model``, ``name``, auc, pr_auc, top_decile_lift, brier)
            plus the ``base_rate`` reference row.
        calibration: model -> its :func:`calibration_table` on the test slice.
        train_dates, test_dates: observation dates of each part.
        n_train, n_test, train_rate, test_rate: sizes and churn rates.
        models: the fitted models (trained on the earlier part only).
        test: the test observations; ``predictions`` their probability per model.
    """

    metrics: pd.DataFrame
    calibration: dict[str, pd.DataFrame]
    train_dates: list[date]
    test_dates: list[date]
    n_train: int
    n_test: int
    train_rate: float
    test_rate: float
    models: dict[str, Any] = field(repr=False)
    test: Observations = field(repr=False)
    predictions: pd.DataFrame = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (for model metadata and ``--json``)."""
        return {
            "train_dates": [self.train_dates[0].isoformat(), self.train_dates[-1].isoformat()],
            "test_dates": [self.test_dates[0].isoformat(), self.test_dates[-1].isoformat()],
            "n_train": self.n_train,
            "n_test": self.n_test,
            "train_churn_rate": self.train_rate,
            "test_churn_rate": self.test_rate,
            "metrics": {
                row["model"]: {k: row[k] for k in ("auc", "pr_auc", "top_decile_lift", "brier")}
                for row in self.metrics.to_dict("records")
            },
        }


def evaluate_models(
    obs: Observations,
    *,
    test_dates: int | float = 6,
    models: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Train each model on the earlier observations and measure it on the later ones.

    Args:
        obs: observations (censored ones are dropped here).
        test_dates: how many of the latest observation dates (int) or which share of them
            (float) form the test slice; training uses the earlier dates whose label is known
            before the test slice starts (gap = horizon + grace days).
        models: name -> unfitted estimator (default :func:`default_models`).
        progress: called as ``progress("evaluate", done, total)`` per model.
    """
    obs = obs.labelled
    if obs.frame.empty:
        raise InvalidInput("no labelled observations to evaluate", field="observations")
    try:
        train_mask, test_mask = time_split(
            obs.frame["as_of"], later=test_dates, gap_days=obs.gap_days
        )
    except InvalidInput as exc:
        raise InvalidInput(
            str(exc), hint="hold out fewer observation dates (e.g. `--test-months 2`)"
        ) from exc
    train, test = obs.where(train_mask), obs.where(test_mask)
    y_train, y_test = train.y, test.y
    for part, labels in (("training", y_train), ("test", y_test)):
        if labels.min() == labels.max():
            raise InvalidInput(
                f"the {part} slice has no {'retained' if labels[0] else 'churned'} customers",
                field="observations",
                expected="churn and retention in both the earlier and the later dates",
            )
    models = dict(models) if models is not None else default_models(gap_days=obs.gap_days)
    rows, calibration = [], {}
    predictions = pd.DataFrame(
        {"customer_id": test.frame["customer_id"], "as_of": test.frame["as_of"], "churned": y_test}
    )
    for i, (name, model) in enumerate(models.items()):
        model.fit(train.X, y_train)
        p = model.churn_probability(test.X)
        score = model.ranking_score(test.X)
        rows.append(
            {"model": name, "name": MODEL_NAMES.get(name, name), **score_metrics(y_test, score, p)}
        )
        calibration[name] = calibration_table(y_test, p)
        predictions[name] = p
        if progress:
            progress("evaluate", i + 1, len(models))
    rate = float(y_test.mean())
    constant = np.full(len(y_test), rate)
    rows.append(
        {
            "model": "base_rate",
            "name": MODEL_NAMES["base_rate"],
            "auc": 0.5,
            "pr_auc": rate,
            "top_decile_lift": 1.0,
            "brier": float(brier_score_loss(y_test, constant)),
        }
    )
    return Evaluation(
        metrics=pd.DataFrame(rows),
        calibration=calibration,
        train_dates=train.dates,
        test_dates=test.dates,
        n_train=len(train.frame),
        n_test=len(test.frame),
        train_rate=float(y_train.mean()),
        test_rate=rate,
        models=models,
        test=test,
        predictions=predictions,
    )
