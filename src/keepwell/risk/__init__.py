"""Churn risk: who is likely to leave, why, and how much revenue is at stake.

Modules (``docs/risk.md``):

* :mod:`keepwell.risk.dataset` -- leak-free observations: features as of a date, churn label;
* :mod:`keepwell.risk.model` -- estimators: LightGBM, the logistic baseline, the recency rule;
* :mod:`keepwell.risk.evaluate` -- out-of-time AUC, PR-AUC, top-decile lift, Brier, calibration;
* :mod:`keepwell.risk.reasons` -- top drivers per customer in words, from SHAP contributions;
* :mod:`keepwell.risk.artifacts` -- saved models (joblib + JSON metadata);
* :mod:`keepwell.risk.service` -- train, evaluate, score customers, the work list;
* :mod:`keepwell.risk.models` -- the ``RiskScore`` table (score history).

The names below are imported lazily, so ``import keepwell.risk.models`` (the table, which every
database user loads) does not pull in scikit-learn and LightGBM.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Observations": "keepwell.risk.dataset",
    "build_observations": "keepwell.risk.dataset",
    "snapshot_features": "keepwell.risk.dataset",
    "GradientBoostingRiskModel": "keepwell.risk.model",
    "LogisticRiskModel": "keepwell.risk.model",
    "RecencyBaseline": "keepwell.risk.model",
    "time_split": "keepwell.risk.model",
    "Evaluation": "keepwell.risk.evaluate",
    "evaluate_models": "keepwell.risk.evaluate",
    "Reason": "keepwell.risk.reasons",
    "explain": "keepwell.risk.reasons",
    "SavedModel": "keepwell.risk.artifacts",
    "load_model": "keepwell.risk.artifacts",
    "save_model": "keepwell.risk.artifacts",
    "ScoreRun": "keepwell.risk.service",
    "WorkItem": "keepwell.risk.service",
    "score_customers": "keepwell.risk.service",
    "train": "keepwell.risk.service",
    "worklist": "keepwell.risk.service",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keepwell.risk' has no attribute {name!r}")
    return getattr(import_module(module), name)
