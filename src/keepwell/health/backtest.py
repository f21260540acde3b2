"""How well a health configuration ranked the customers who later churned.

For each past observation date D (snapshot at local midnight at the start of D):

* **who**: customers active at D (a paid activity spell in force, 7-day grace gap);
* **health**: computed from inputs as of D only (data strictly before D; stored risk scores
  only if they were scored before D), so nothing from the future leaks in;
* **label**: ``churned`` = the customer's activity spell ends within ``horizon_days`` after D
  (a churn; a gap shorter than the grace gap is not one). Dates are only used when the label
  is complete: D + horizon + grace <= the end of the data.

Reported (``docs/health.md``):

* ``auc``: ROC AUC of *low* health for churn (scikit-learn's ``roc_auc_score`` on -health):
  the chance that a random churner had lower health than a random stayer (0.5 = no better
  than chance, 1 = perfect), pooled over all dates and per date;
* ``lift``: churn rate of the lowest-health decile (the 10 % of observations with the lowest
  health, ties by customer id) / churn rate of all observations;
* churn rate per band, and the AUC of each component alone (where it is present).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import ibis
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from keepwell.errors import InvalidInput
from keepwell.metrics import periods as P
from keepwell.metrics.activity import spells
from keepwell.metrics.sources import Sources

__all__ = ["BacktestResult", "churn_labels", "evaluate", "observation_dates"]


def observation_dates(
    *, end: date, periods: int = 6, horizon_days: int = 30, grace_days: int = 7
) -> list[date]:
    """The first day of each of the last ``periods`` months whose label window is complete.

    >>> observation_dates(end=date(2026, 11, 20), periods=3)
    [datetime.date(2026, 8, 1), datetime.date(2026, 9, 1), datetime.date(2026, 10, 1)]
    """
    if periods < 1:
        raise InvalidInput("need at least one observation date", field="periods", expected=">= 1")
    latest = end - timedelta(days=horizon_days + grace_days)
    day = latest.replace(day=1)
    days: list[date] = []
    while len(days) < periods:
        days.append(day)
        day = (day - timedelta(days=1)).replace(day=1)
    return sorted(days)


def churn_labels(
    src: Sources, *, as_of: Sequence[date], horizon_days: int = 30, grace_days: int = 7
) -> pd.DataFrame:
    """customer_id, as_of, churned: every customer active at each snapshot and whether its
    spell ended within ``horizon_days`` after it."""
    days = sorted(set(as_of))
    tz = src.timezone
    snaps = pd.DataFrame(
        {
            "as_of": days,
            "at": [P.to_utc_naive(d, tz) for d in days],
            "until": [P.to_utc_naive(d + timedelta(days=horizon_days), tz) for d in days],
        }
    )
    for col in ("at", "until"):
        snaps[col] = pd.to_datetime(snaps[col]).astype("datetime64[us]")
    s = ibis.memtable(snaps, schema={"as_of": "date", "at": "timestamp", "until": "timestamp"})
    sp = spells(src, grace_days=grace_days)
    j = sp.join(s, (sp.started_at <= s.at) & (s.at < sp.ended_at))
    out = j.select("customer_id", "as_of", churned=j.ended_at <= j.until)
    df = src.con.execute(out.order_by(["as_of", "customer_id"]))
    df["as_of"] = pd.to_datetime(df["as_of"]).dt.date
    df["churned"] = df["churned"].astype(bool)
    return df


@dataclass
class BacktestResult:
    """The backtest's figures (see the module docstring)."""

    config: str
    dates: list[date]
    horizon_days: int
    observations: int
    churned: int
    unscored: int
    auc: float | None
    lowest_decile_churn_rate: float | None
    lift: float | None
    by_band: pd.DataFrame = field(repr=False)
    by_date: pd.DataFrame = field(repr=False)
    by_component: pd.DataFrame = field(repr=False)

    @property
    def churn_rate(self) -> float | None:
        return self.churned / self.observations if self.observations else None


def _auc(churned: np.ndarray, risk: np.ndarray) -> float | None:
    if len(churned) == 0 or churned.all() or not churned.any():
        return None
    return float(roc_auc_score(churned, risk))


def _lowest_decile(frame: pd.DataFrame) -> float | None:
    if frame.empty:
        return None
    k = math.ceil(0.1 * len(frame))
    low = frame.sort_values(["health", "customer_id"], kind="stable").head(k)
    return float(low["churned"].mean())


def evaluate(
    scored: pd.DataFrame,
    *,
    config: str,
    components: Sequence[str],
    horizon_days: int,
) -> BacktestResult:
    """The figures for ``scored`` (customer_id, as_of, health, band, churned, components)."""
    unscored = int(scored["health"].isna().sum())
    df = scored[scored["health"].notna()]
    y = df["churned"].to_numpy(dtype=bool)
    rate = float(y.mean()) if len(y) else None
    low = _lowest_decile(df)
    lift = low / rate if low is not None and rate else None

    bands = []
    for band in ("red", "yellow", "green"):
        part = df[df["band"] == band]
        bands.append(
            {
                "band": band,
                "customers": len(part),
                "churned": int(part["churned"].sum()),
                "churn_rate": float(part["churned"].mean()) if len(part) else None,
            }
        )
    dates = []
    for day, part in df.groupby("as_of", sort=True):
        yy = part["churned"].to_numpy(dtype=bool)
        dates.append(
            {
                "as_of": day,
                "customers": len(part),
                "churned": int(yy.sum()),
                "churn_rate": float(yy.mean()),
                "auc": _auc(yy, -part["health"].to_numpy()),
            }
        )
    comps = []
    for name in components:
        part = df[df[name].notna()]
        comps.append(
            {
                "component": name,
                "present": len(part),
                "auc": _auc(part["churned"].to_numpy(dtype=bool), -part[name].to_numpy()),
            }
        )
    return BacktestResult(
        config=config,
        dates=sorted({d for d in scored["as_of"]}),
        horizon_days=horizon_days,
        observations=len(df),
        churned=int(y.sum()),
        unscored=unscored,
        auc=_auc(y, -df["health"].to_numpy()),
        lowest_decile_churn_rate=low,
        lift=lift,
        by_band=pd.DataFrame(bands),
        by_date=pd.DataFrame(dates),
        by_component=pd.DataFrame(comps),
    )
