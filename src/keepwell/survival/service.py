"""Survival analysis of customer lifetimes with lifelines (no statistics re-derived here).

* :func:`km_curves`: Kaplan-Meier retention curves S(t) = prod_{t_i <= t} (1 - d_i / n_i)
  per segment, with lifelines' pointwise confidence band (Greenwood variance, exponential
  "log(-log)" transform; ``alpha`` = 0.05 -> 95 %), median lifetime (first t with S(t) <= 0.5;
  None = "not reached") and the log-rank test of equal survival across segments
  (``multivariate_logrank_test``) plus pairwise tests.
* :func:`cox_model`: Cox proportional hazards h(t|x) = h0(t) exp(b'x). Categorical covariates
  are one-hot encoded against their most common level (the reference, HR = 1); numeric ones
  are standardised (z = (x - mean) / sd), so their hazard ratio is per one standard deviation.
  Reported per term: HR = exp(b), its 95 % CI and the Wald p-value, as lifelines computes them.
* :func:`remaining_lifetime`: the expected remaining lifetime of each active customer given
  that it has survived to its current tenure a:

      E[min(T, u) - a | T > a] = (RMST(u) - RMST(a)) / S(a),   RMST(t) = int_0^t S(s) ds

  With ``method="km"`` the curve is the Kaplan-Meier estimate, RMST is lifelines' exact
  ``restricted_mean_survival_time`` (tenure rounded to whole days), and u = min(a + horizon,
  tau), tau = the longest observed lifetime:
  the KM curve says nothing beyond tau, so when it does not reach 0 the mean is *restricted*
  there (a lower bound that shrinks for customers whose tenure is close to tau). With
  ``method="weibull"`` a Weibull model (lifelines ``WeibullFitter``) extrapolates past the data,
  u = a + horizon (default 10 years), and RMST integrates lifelines' S(t) numerically
  (trapezoid rule on a quarter-day grid).

Durations are in days (see :mod:`keepwell.survival.data`); results add months (/ 30.44).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter, WeibullFitter
from lifelines.statistics import multivariate_logrank_test, pairwise_logrank_test
from lifelines.utils import restricted_mean_survival_time
from scipy.integrate import cumulative_trapezoid

from keepwell.errors import InvalidInput, KeepwellError
from keepwell.metrics.sources import Sources
from keepwell.survival.data import DAYS_PER_MONTH, lifetimes

__all__ = [
    "CoxResult",
    "KMResult",
    "cox_model",
    "expected_lifetimes",
    "hazard_ratios",
    "km_curves",
    "remaining_lifetime",
    "retention_curves",
    "segment_values",
]

NONE_LABEL = "(none)"
OTHER_LABEL = "(other)"
FIXED_COLUMNS = {
    "customer_id",
    "started_at",
    "ended_at",
    "duration_days",
    "churned",
    "active",
    "tenure_days",
    "mrr_now",
    "currency",
}
MIN_DURATION_DAYS = 1 / 24
"""Parametric fits need positive durations: shorter lifetimes count as one hour."""


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha {alpha} is outside (0, 1)", field="alpha", expected="e.g. 0.05")


def _attributes(data: pd.DataFrame) -> list[str]:
    return [c for c in data.columns if c not in FIXED_COLUMNS]


def segment_values(data: pd.DataFrame, by: str | None) -> pd.Series:
    """The segment label of each row: the ``by`` attribute as text, "(none)" when missing;
    a single "all" segment when ``by`` is None."""
    if by is None:
        return pd.Series("all", index=data.index, dtype="object")
    if by not in _attributes(data):
        raise InvalidInput(
            f"unknown segment attribute {by!r}",
            field="by",
            expected=", ".join(sorted(_attributes(data))),
        )
    values = data[by]
    text = values.map(lambda v: NONE_LABEL if pd.isna(v) else _label(v))
    return text.astype("object")


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _require_rows(data: pd.DataFrame) -> None:
    if data.empty:
        raise InvalidInput(
            "no customer lifetimes to analyse",
            expected="customers with paid subscriptions",
            hint="import subscriptions first (or run `keepwell demo`)",
        )


@dataclass
class KMResult:
    """Kaplan-Meier curves per segment and the log-rank comparison.

    ``curves``: segment, days, months, survival, lower, upper, at_risk (one row per event
    time, starting at 0). ``summary``: segment, customers, churned, median_days,
    median_months, survival_3m/6m/12m/24m (None past the data). ``logrank``: statistic,
    p_value, degrees_of_freedom (None with one segment). ``pairwise``: segment_a,
    segment_b, statistic, p_value.
    """

    by: str | None
    alpha: float
    curves: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    logrank: dict[str, float] | None = None
    pairwise: pd.DataFrame | None = field(default=None, repr=False)


def _fit_km(durations: pd.Series, events: pd.Series, label: str, alpha: float) -> KaplanMeierFitter:
    return KaplanMeierFitter(alpha=alpha, label=label).fit(durations, events)


def km_curves(
    data: pd.DataFrame, *, by: str | None = None, alpha: float = 0.05, min_customers: int = 1
) -> KMResult:
    """Kaplan-Meier curves of ``data`` (a :func:`~keepwell.survival.data.lifetimes` table)
    per ``by`` segment; segments with fewer than ``min_customers`` are left out."""
    _check_alpha(alpha)
    _require_rows(data)
    seg = segment_values(data, by)
    curves, summary = [], []
    for name in sorted(seg.unique()):
        part = data[seg == name]
        if len(part) < min_customers:
            continue
        km = _fit_km(part["duration_days"], part["churned"], name, alpha)
        sf = km.survival_function_.iloc[:, 0]
        ci = km.confidence_interval_
        table = km.event_table
        curves.append(
            pd.DataFrame(
                {
                    "segment": name,
                    "days": sf.index.to_numpy(dtype="float64"),
                    "survival": sf.to_numpy(),
                    "lower": ci.iloc[:, 0].to_numpy(),
                    "upper": ci.iloc[:, 1].to_numpy(),
                    "at_risk": table["at_risk"].reindex(sf.index).to_numpy(),
                }
            )
        )
        median = km.median_survival_time_
        last = float(sf.index.max())
        row: dict[str, object] = {
            "segment": name,
            "customers": len(part),
            "churned": int(part["churned"].sum()),
            "median_days": None if not np.isfinite(median) else float(median),
        }
        row["median_months"] = None if row["median_days"] is None else median / DAYS_PER_MONTH
        for months in (3, 6, 12, 24):
            t = months * DAYS_PER_MONTH
            row[f"survival_{months}m"] = float(km.predict(t)) if t <= last else None
        summary.append(row)
    if not curves:
        raise InvalidInput(
            f"no segment has at least {min_customers} customers",
            field="min_customers",
            expected="a smaller minimum",
        )
    out = pd.concat(curves, ignore_index=True)
    out["months"] = out["days"] / DAYS_PER_MONTH
    out = out[["segment", "days", "months", "survival", "lower", "upper", "at_risk"]]
    result = KMResult(by=by, alpha=alpha, curves=out, summary=pd.DataFrame(summary))
    kept = data[seg.isin(result.summary["segment"])]
    groups = seg[kept.index]
    if groups.nunique() > 1:
        test = multivariate_logrank_test(kept["duration_days"], groups, kept["churned"])
        result.logrank = {
            "statistic": float(test.test_statistic),
            "p_value": float(test.p_value),
            "degrees_of_freedom": int(test.degrees_of_freedom),
        }
        pw = pairwise_logrank_test(kept["duration_days"], groups, kept["churned"]).summary
        result.pairwise = pd.DataFrame(
            {
                "segment_a": [str(a) for a, _ in pw.index],
                "segment_b": [str(b) for _, b in pw.index],
                "statistic": pw["test_statistic"].to_numpy(dtype="float64"),
                "p_value": pw["p"].to_numpy(dtype="float64"),
            }
        )
    return result


@dataclass
class CoxResult:
    """Cox model hazard ratios.

    ``table``: covariate, term (``industry=travel`` or the numeric covariate's name),
    reference (the level compared against; for numeric covariates "per 1 sd = <sd>"), hr,
    hr_lower, hr_upper, p_value. ``notes``: what was merged, filled or warned about.
    """

    covariates: list[str]
    customers: int
    churned: int
    concordance: float
    table: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)


def _is_numeric(values: pd.Series) -> bool:
    present = values.dropna()
    if present.empty:
        return False
    return bool(pd.to_numeric(present, errors="coerce").notna().all())


def _design(
    data: pd.DataFrame, covariates: Sequence[str], min_level: int, notes: list[str]
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """The covariate matrix and, per column, (covariate, reference text)."""
    columns: dict[str, pd.Series] = {}
    meta: dict[str, tuple[str, str]] = {}
    for cov in covariates:
        values = data[cov]
        if _is_numeric(values):
            x = pd.to_numeric(values, errors="coerce").astype("float64")
            missing = int(x.isna().sum())
            if missing:
                notes.append(f"{cov}: {missing} missing values set to the mean")
                x = x.fillna(x.mean())
            sd = float(x.std())
            if not sd > 0:
                notes.append(f"{cov}: constant, left out")
                continue
            columns[cov] = (x - x.mean()) / sd
            meta[cov] = (cov, f"per 1 sd = {sd:.4g}")
            continue
        text = segment_values(data, cov)
        counts = text.value_counts()
        rare = counts[counts < min_level].index
        if len(rare):
            notes.append(
                f"{cov}: {len(rare)} level(s) with fewer than {min_level} customers "
                f"merged into {OTHER_LABEL}"
            )
            text = text.where(~text.isin(rare), OTHER_LABEL)
            counts = text.value_counts()
        if len(counts) < 2:
            notes.append(f"{cov}: a single level, left out")
            continue
        reference = str(counts.sort_index().idxmax())  # most common level; ties alphabetical
        for level in sorted(counts.index):
            if level == reference:
                continue
            name = f"{cov}={level}"
            columns[name] = (text == level).astype("float64")
            meta[name] = (cov, f"{cov}={reference}")
    if not columns:
        raise InvalidInput(
            "no usable covariate (each is constant or has a single level)",
            field="covariates",
            expected="attributes that vary between customers",
        )
    return pd.DataFrame(columns, index=data.index), meta


def cox_model(
    data: pd.DataFrame,
    *,
    covariates: Sequence[str] = ("plan", "industry"),
    penalizer: float = 0.0,
    min_level: int = 5,
    alpha: float = 0.05,
) -> CoxResult:
    """Fit a Cox model of time to first churn on ``covariates`` (see the module docstring).

    Levels with fewer than ``min_level`` customers are merged into "(other)". lifelines'
    warnings (e.g. convergence) are returned as notes; a failed fit raises
    :class:`KeepwellError` suggesting a ``penalizer``.
    """
    _check_alpha(alpha)
    _require_rows(data)
    if not covariates:
        raise InvalidInput("no covariates given", field="covariates", expected="e.g. plan")
    for cov in covariates:
        segment_values(data, cov)  # validates the name
    if penalizer < 0:
        raise InvalidInput("penalizer must be >= 0", field="penalizer", expected="e.g. 0.1")
    notes: list[str] = []
    X, meta = _design(data, list(covariates), min_level, notes)
    frame = X.assign(
        duration_days=data["duration_days"].clip(lower=MIN_DURATION_DAYS),
        churned=data["churned"].astype(int),
    )
    if frame["churned"].sum() == 0:
        raise InvalidInput("no customer churned: hazard ratios are undefined", field="data")
    cph = CoxPHFitter(penalizer=penalizer, alpha=alpha)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph.fit(frame, duration_col="duration_days", event_col="churned")
        except Exception as exc:  # lifelines' ConvergenceError and linear-algebra failures
            raise KeepwellError(
                f"the Cox model did not converge: {str(exc).splitlines()[0]}",
                hint="try --penalizer 0.1, fewer covariates or a larger --min-level",
            ) from None
    notes += sorted({str(w.message).strip().splitlines()[0] for w in caught})
    s = cph.summary
    lo, hi = (
        next(c for c in s.columns if c.startswith("exp(coef) lower")),
        next(c for c in s.columns if c.startswith("exp(coef) upper")),
    )
    table = pd.DataFrame(
        {
            "covariate": [meta[t][0] for t in s.index],
            "term": list(s.index),
            "reference": [meta[t][1] for t in s.index],
            "hr": s["exp(coef)"].to_numpy(dtype="float64"),
            "hr_lower": s[lo].to_numpy(dtype="float64"),
            "hr_upper": s[hi].to_numpy(dtype="float64"),
            "p_value": s["p"].to_numpy(dtype="float64"),
        }
    )
    return CoxResult(
        covariates=list(covariates),
        customers=len(frame),
        churned=int(frame["churned"].sum()),
        concordance=float(cph.concordance_index_),
        table=table,
        notes=notes,
    )


def _remaining_km(model: KaplanMeierFitter, ages: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """(RMST(upper) - RMST(age)) / S(age) with lifelines' exact Kaplan-Meier RMST, once per
    distinct (age, upper) pair."""
    cache: dict[float, float] = {}

    def rmst(t: float) -> float:
        if t not in cache:
            cache[t] = float(restricted_mean_survival_time(model, t=t))
        return cache[t]

    out = np.zeros(len(ages))
    for i, (a, u) in enumerate(zip(ages, upper, strict=True)):
        s_a = float(model.predict(a))
        out[i] = 0.0 if s_a <= 0 or u <= a else (rmst(u) - rmst(a)) / s_a
    return out


def _remaining_parametric(model: WeibullFitter, ages: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The same for a smooth parametric S(t): lifelines' ``survival_function_at_times`` on a
    grid of 0.25 days, integrated with the trapezoid rule (error far below a day)."""
    grid = np.arange(0.0, float(upper.max()) + 0.5, 0.25)
    s = np.asarray(model.survival_function_at_times(grid), dtype="float64").reshape(-1)
    integral = cumulative_trapezoid(s, grid, initial=0.0)
    s_a = np.interp(ages, grid, s)
    span = np.interp(upper, grid, integral) - np.interp(ages, grid, integral)
    return np.where(s_a > 0, span / np.where(s_a > 0, s_a, 1.0), 0.0)


def remaining_lifetime(
    data: pd.DataFrame,
    *,
    by: str | None = None,
    method: str = "km",
    horizon_days: float = 3652.5,
) -> pd.DataFrame:
    """Expected remaining lifetime of every active customer (see the module docstring).

    Each customer is conditioned on its current tenure and uses the curve of its ``by``
    segment (one curve for everyone by default). Columns: customer_id, segment,
    tenure_days, remaining_days, remaining_months, until_days (the upper limit u - the
    restriction), restricted (True when u is the data's end tau, not the horizon).
    """
    _require_rows(data)
    if method not in ("km", "weibull"):
        raise InvalidInput(f"unknown method {method!r}", field="method", expected="km or weibull")
    if not horizon_days > 0:
        raise InvalidInput("horizon must be positive", field="horizon_days", expected="> 0")
    seg = segment_values(data, by)
    frames = []
    for name in sorted(seg.unique()):
        part = data[seg == name]
        active = part[part["active"]]
        if active.empty:
            continue
        if part["churned"].sum() == 0:
            raise InvalidInput(
                f"segment {name!r} has no churn: its lifetime cannot be estimated",
                field="by",
                expected="segments with some churned customers",
            )
        ages = active["tenure_days"].to_numpy(dtype="float64")
        if method == "km":
            model = KaplanMeierFitter(label=name).fit(part["duration_days"], part["churned"])
            tau = float(part["duration_days"].max())
            ages = np.minimum(ages, tau)
            upper = np.minimum(ages + horizon_days, tau)
            restricted = upper < ages + horizon_days
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = WeibullFitter(label=name).fit(
                    part["duration_days"].clip(lower=MIN_DURATION_DAYS), part["churned"]
                )
            upper = ages + horizon_days
            restricted = np.zeros(len(ages), dtype=bool)
        if method == "km":  # tenure to the nearest day: one exact RMST per distinct day
            pairs = np.c_[np.round(ages), np.round(upper)]
            uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
            values = _remaining_km(model, uniq[:, 0], uniq[:, 1])[inverse.reshape(-1)]
        else:
            values = _remaining_parametric(model, ages, upper)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": active["customer_id"].to_numpy(),
                    "segment": name,
                    "tenure_days": active["tenure_days"].to_numpy(dtype="float64"),
                    "remaining_days": values,
                    "until_days": upper,
                    "restricted": restricted,
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            columns=[
                "customer_id",
                "segment",
                "tenure_days",
                "remaining_days",
                "remaining_months",
                "until_days",
                "restricted",
            ]
        )
    out = pd.concat(frames, ignore_index=True)
    out["remaining_months"] = out["remaining_days"] / DAYS_PER_MONTH
    cols = ["customer_id", "segment", "tenure_days", "remaining_days", "remaining_months"]
    return out[[*cols, "until_days", "restricted"]].sort_values("customer_id", ignore_index=True)


def retention_curves(
    src: Sources,
    *,
    by: str | None = None,
    alpha: float = 0.05,
    as_of: datetime | None = None,
    min_customers: int = 1,
) -> KMResult:
    """Kaplan-Meier curves per ``by`` segment of the lifetimes known at ``as_of`` (now)."""
    return km_curves(lifetimes(src, as_of=as_of), by=by, alpha=alpha, min_customers=min_customers)


def hazard_ratios(
    src: Sources,
    *,
    covariates: Sequence[str] = ("plan", "industry"),
    penalizer: float = 0.0,
    min_level: int = 5,
    as_of: datetime | None = None,
) -> CoxResult:
    """Cox hazard ratios of the lifetimes known at ``as_of`` (now)."""
    return cox_model(
        lifetimes(src, as_of=as_of),
        covariates=covariates,
        penalizer=penalizer,
        min_level=min_level,
    )


def expected_lifetimes(
    src: Sources,
    *,
    by: str | None = None,
    method: str = "km",
    horizon_days: float = 3652.5,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Expected remaining lifetime of every customer active at ``as_of`` (now), with its
    current MRR (``mrr_now``, minor units) and ``currency``."""
    data = lifetimes(src, as_of=as_of)
    out = remaining_lifetime(data, by=by, method=method, horizon_days=horizon_days)
    money = data[["customer_id", "mrr_now", "currency"]]
    return out.merge(money, on="customer_id", how="left")
