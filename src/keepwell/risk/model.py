"""Churn-risk estimators: a transparent logistic baseline, LightGBM, and a recency rule.

Estimators follow the scikit-learn / lifelines conventions: settings in ``__init__``,
``fit(X, y) -> self``, fitted attributes end in ``_``, ``predict_proba(X)`` returns the
(n, 2) class probabilities (column 1 = churn). ``X`` is a DataFrame of feature columns plus
``as_of`` (the observation date), as :attr:`keepwell.risk.dataset.Observations.X` gives it.

**Time order.** Calibration is fitted on a *later* slice of the training observations than the
model itself: the last ``calibration_share`` of the observation dates, with the observations
whose label window reaches into that slice (``as_of + gap_days`` after its first date) left out
of the model's part, so neither part sees the other's outcomes. :func:`time_split` does the
same for train/test in :mod:`keepwell.risk.evaluate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler

from keepwell.errors import InvalidInput

__all__ = [
    "GradientBoostingRiskModel",
    "LogisticRiskModel",
    "RecencyBaseline",
    "time_split",
]

CALIBRATIONS = ("isotonic", "sigmoid")
NOT_FEATURES = ("as_of", "customer_id", "churned", "spell_ended_at")


def time_split(
    as_of: Sequence[date] | pd.Series, *, later: int | float, gap_days: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (earlier, later) over observations by their date.

    ``later`` is how many of the distinct dates (an int) or which share of them (a float in
    (0, 1)) form the later part; the earlier part keeps only observations with
    as_of + gap_days <= the first later date (their label is known before it starts).
    Raises :class:`InvalidInput` when either part would be empty.
    """
    days = pd.Series(pd.to_datetime(pd.Series(as_of)).dt.date)
    distinct = sorted(days.unique())
    if isinstance(later, float):
        if not 0 < later < 1:
            raise InvalidInput(f"a share must be in (0, 1), got {later}", field="later")
        n_later = max(1, round(later * len(distinct)))
    else:
        n_later = later
    if n_later < 1 or n_later >= len(distinct):
        raise InvalidInput(
            f"cannot split {len(distinct)} observation dates into earlier and {n_later} later",
            field="as_of",
            expected="more observation dates than the later part takes",
        )
    cutoff = distinct[-n_later]
    late = (days >= cutoff).to_numpy()
    early = (days.map(lambda d: d + timedelta(days=gap_days)) <= cutoff).to_numpy() & ~late
    if not early.any():
        raise InvalidInput(
            f"no observation's label is known before {cutoff} (gap {gap_days} days)",
            field="as_of",
            expected="a longer history of observation dates",
        )
    return early, late


class FrameSelector(BaseEstimator, TransformerMixin):
    """Select the feature columns; categorical ones become pandas categories fixed at fit.

    A value unseen at fit becomes missing (LightGBM treats it as such).
    """

    def __init__(self, features: Sequence[str], categorical: Sequence[str] = ()) -> None:
        self.features = features
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y: Any = None) -> FrameSelector:
        self.categories_ = {
            c: sorted(pd.Series(X[c]).dropna().astype(str).unique()) for c in self.categorical
        }
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X[list(self.features)].copy()
        for col, cats in self.categories_.items():
            out[col] = pd.Categorical(out[col].astype(str), categories=cats)
        return out


def _check_xy(X: pd.DataFrame, y: Any) -> np.ndarray:
    if not isinstance(X, pd.DataFrame):
        raise InvalidInput("X must be a pandas DataFrame of features", field="X")
    labels = np.asarray(y)
    if len(labels) != len(X):
        raise InvalidInput(
            f"X has {len(X)} rows but y has {len(labels)}", field="y", expected="one label a row"
        )
    if not np.isin(labels, (0, 1)).all():
        raise InvalidInput("labels must be 0 or 1", field="y", expected="0 (stayed) or 1 (churned)")
    return labels.astype("int64")


def _need_both(labels: np.ndarray, what: str) -> None:
    if labels.min() == labels.max():
        raise InvalidInput(
            f"the {what} holds only {'churned' if labels[0] else 'retained'} customers",
            field="y",
            expected="both churned and retained observations",
        )


class _RiskModel(BaseEstimator):
    """Shared fit/calibrate/predict logic; subclasses build the scikit-learn pipeline."""

    def _pipeline(self, features: list[str], categorical: list[str], n_rows: int) -> Pipeline:
        raise NotImplementedError

    def _features(self, X: pd.DataFrame) -> tuple[list[str], list[str]]:
        features = (
            list(self.features)
            if self.features
            else [c for c in X.columns if c not in NOT_FEATURES]
        )
        missing = [c for c in features if c not in X.columns]
        if missing:
            raise InvalidInput(f"X lacks feature columns {missing}", field="X")
        categorical = [c for c in features if not pd.api.types.is_numeric_dtype(X[c])]
        return features, categorical

    def fit(self, X: pd.DataFrame, y: Any) -> _RiskModel:
        """Fit on observations ``X`` (features + ``as_of``) and 0/1 labels ``y``."""
        labels = _check_xy(X, y)
        if self.calibration is not None and self.calibration not in CALIBRATIONS:
            raise InvalidInput(
                f"unknown calibration {self.calibration!r}",
                field="calibration",
                expected="isotonic, sigmoid or None",
            )
        self.features_, self.categorical_ = self._features(X)
        if self.calibration is None:
            fit_rows = np.ones(len(X), dtype=bool)
        else:
            if "as_of" not in X.columns:
                raise InvalidInput("time-ordered calibration needs the as_of column", field="as_of")
            fit_rows, cal_rows = time_split(
                X["as_of"], later=self.calibration_share, gap_days=self.gap_days
            )
        _need_both(labels[fit_rows], "training data")
        X_fit = X[fit_rows]
        pipe = self._pipeline(self.features_, self.categorical_, len(X_fit))
        pipe.fit(X_fit, labels[fit_rows])
        self.pipeline_ = pipe
        self.calibrator_: CalibratedClassifierCV | None = None
        if self.calibration is not None:
            _need_both(labels[cal_rows], "calibration slice")
            # one calibrator on the whole slice: a single "split" whose test part is every
            # row (the frozen model is not refitted), not an ensemble over k folds
            every = np.arange(int(cal_rows.sum()))
            cal = CalibratedClassifierCV(
                FrozenEstimator(pipe), method=self.calibration, cv=[(every, every)]
            )
            cal.fit(X[cal_rows], labels[cal_rows])
            self.calibrator_ = cal
            self.n_calibration_ = int(cal_rows.sum())
        else:
            self.n_calibration_ = 0
        self.n_train_ = int(fit_rows.sum())
        self.base_rate_ = float(labels.mean())
        self.classes_ = np.array([0, 1])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "pipeline_"):
            raise InvalidInput(f"{type(self).__name__} is not fitted yet", hint="call fit first")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2) probabilities [stays, churns within the horizon], calibrated if configured."""
        self._check_fitted()
        model = self.calibrator_ if self.calibrator_ is not None else self.pipeline_
        return model.predict_proba(X)

    def churn_probability(self, X: pd.DataFrame) -> np.ndarray:
        """P(churn within the horizon) per row: ``predict_proba(X)[:, 1]``."""
        return self.predict_proba(X)[:, 1]

    def ranking_score(self, X: pd.DataFrame) -> np.ndarray:
        """What ranks customers (higher = riskier): the churn probability."""
        return self.churn_probability(X)

    def __repr__(self) -> str:
        state = f"fitted on {self.n_train_:,} observations" if hasattr(self, "n_train_") else ""
        return f"<{type(self).__name__}: {state or 'not fitted'}>"


class LogisticRiskModel(_RiskModel):
    """Transparent baseline: L2-regularised logistic regression on tamed, scaled features.

    Numeric features: median imputation plus a "was missing" indicator, a quantile transform
    to a normal shape (skew correction: counts and days are long-tailed), standard scaling.
    Categorical features: one-hot (unknown values ignored). Then ``LogisticRegression(C)``
    with the L2 penalty; coefficients are on the transformed scale (``coefficients()``).

    Parameters:
        C: inverse regularisation strength (smaller = stronger).
        features: columns to use (default: every column of X but the keys).
        calibration: ``None`` (default: logistic regression is fitted on log-loss already),
            ``"sigmoid"`` or ``"isotonic"`` on a later time slice.
        calibration_share, gap_days: the calibration slice (see the module docstring).
    """

    def __init__(
        self,
        *,
        C: float = 0.5,
        features: Sequence[str] | None = None,
        calibration: str | None = None,
        calibration_share: float = 0.2,
        gap_days: int = 0,
        max_iter: int = 2000,
    ) -> None:
        if C <= 0:
            raise InvalidInput(f"C must be > 0, got {C}", field="C")
        self.C = C
        self.features = features
        self.calibration = calibration
        self.calibration_share = calibration_share
        self.gap_days = gap_days
        self.max_iter = max_iter

    def _pipeline(self, features: list[str], categorical: list[str], n_rows: int) -> Pipeline:
        numeric = [c for c in features if c not in categorical]
        numeric_steps = Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                ),
                (
                    "skew",
                    QuantileTransformer(
                        output_distribution="normal",
                        n_quantiles=max(2, min(1000, n_rows)),
                        random_state=0,
                    ),
                ),
                ("scale", StandardScaler()),
            ]
        )
        columns = ColumnTransformer(
            [
                ("numeric", numeric_steps, numeric),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        )
        return Pipeline(
            [
                ("select", FrameSelector(features)),
                ("columns", columns),
                ("logit", LogisticRegression(C=self.C, max_iter=self.max_iter)),
            ]
        )

    def coefficients(self) -> pd.Series:
        """Fitted coefficients by transformed column name (largest absolute first)."""
        self._check_fitted()
        names = self.pipeline_.named_steps["columns"].get_feature_names_out()
        coef = pd.Series(self.pipeline_.named_steps["logit"].coef_[0], index=names)
        return coef.reindex(coef.abs().sort_values(ascending=False).index)


class GradientBoostingRiskModel(_RiskModel):
    """Gradient-boosted trees (LightGBM) with time-ordered probability calibration.

    Missing values and categorical features (pandas categories) are handled by LightGBM
    natively. :meth:`contributions` gives per-feature SHAP values (LightGBM's
    ``pred_contrib``) on the log-odds scale of the uncalibrated model.

    Parameters:
        n_estimators, learning_rate, num_leaves, min_child_samples, subsample,
        colsample_bytree, reg_lambda: passed to ``lightgbm.LGBMClassifier``.
        features: columns to use (default: every column of X but the keys).
            Defaults suit churn data, where a strong signal can be rare (a failed payment in
            well under 1 % of observations): shallow trees (4 leaves) that may split off
            20 observations, shrinkage and L2 (``reg_lambda=5``).
        features: columns to use (default: every column of X but the keys).
        calibration: ``"sigmoid"`` (default: Platt scaling, two parameters, steady on a
            small slice and rank-preserving), ``"isotonic"`` or ``None``.
        calibration_share: share of the latest observation dates used to calibrate (at
            least one date); the model itself is fitted on the dates before them.
        gap_days: purge between the model's and the calibration slice (horizon + grace).
        random_state: LightGBM's seed (deterministic mode).
        n_jobs: LightGBM threads. 1 by default: on a shared, busy machine OpenMP threads
            wait on each other (two threads measured 13x slower than one under load); raise
            it on a dedicated machine for large data.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 4,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 5.0,
        features: Sequence[str] | None = None,
        calibration: str | None = "sigmoid",
        calibration_share: float = 0.1,
        gap_days: int = 0,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        if n_estimators < 1 or learning_rate <= 0:
            raise InvalidInput(
                "n_estimators must be >= 1 and learning_rate > 0", field="n_estimators"
            )
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.features = features
        self.calibration = calibration
        self.calibration_share = calibration_share
        self.gap_days = gap_days
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _pipeline(self, features: list[str], categorical: list[str], n_rows: int) -> Pipeline:
        booster = lgb.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        return Pipeline([("select", FrameSelector(features, categorical)), ("lgbm", booster)])

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the raw log-odds (SHAP values; LightGBM
        ``pred_contrib=True``), one column per feature plus ``bias``; rows sum to the
        uncalibrated model's log-odds."""
        self._check_fitted()
        frame = self.pipeline_.named_steps["select"].transform(X)
        values = self.pipeline_.named_steps["lgbm"].predict(frame, pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.features_, "bias"], index=X.index)

    def feature_importance(self) -> pd.Series:
        """Total gain per feature (largest first)."""
        self._check_fitted()
        booster = self.pipeline_.named_steps["lgbm"].booster_
        gain = booster.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.features_).sort_values(ascending=False)


class RecencyBaseline(BaseEstimator):
    """The rule of thumb "days since last activity": customers ranked by that count alone.

    ``ranking_score`` is the day count (never active = above everyone); ``predict_proba``
    maps it to a probability with an isotonic (monotone) fit on the training data, so its
    Brier score and calibration can be compared with the learned models.
    """

    def __init__(self, *, feature: str = "days_since_last_event", never: float = 100_000.0):
        self.feature = feature
        self.never = never

    def _days(self, X: pd.DataFrame) -> np.ndarray:
        if self.feature not in X.columns:
            raise InvalidInput(f"X lacks the column {self.feature!r}", field="X")
        return X[self.feature].astype("float64").fillna(self.never).to_numpy()

    def fit(self, X: pd.DataFrame, y: Any) -> RecencyBaseline:
        labels = _check_xy(X, y)
        iso = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(self._days(X), labels)
        self.isotonic_ = iso
        self.features_ = [self.feature]
        self.base_rate_ = float(labels.mean())
        self.classes_ = np.array([0, 1])
        return self

    def ranking_score(self, X: pd.DataFrame) -> np.ndarray:
        return self._days(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "isotonic_"):
            raise InvalidInput("RecencyBaseline is not fitted yet", hint="call fit first")
        p = self.isotonic_.predict(self._days(X))
        return np.column_stack([1 - p, p])

    def churn_probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X)[:, 1]
