"""Turn health inputs into component scores, a 0-100 health score and a band (pure pandas).

Component inputs (W = the configuration's ``window_days``, default 28):

* ``usage``: ``active_days_W``.
* ``trend``: ``active_days_pct_change``; +100 % when the previous window was empty and the
  current one is not (usage appeared). Left out when both windows are empty (no habit to
  compare; the usage component already says it) and for customers younger than 2W days
  (the previous window would fall partly before they started).
* ``breadth``: number of event types with at least one event in the last W days, except
  the configuration's ``ignore_events`` (``login`` by default).
* ``payments``: ``payment_issues_90``; ``nps``, ``csat``: the latest answers;
  ``support``: ``tickets_W``; ``risk``: ``risk_probability`` when the frame has it.

Then ``health = sum(w_c s_c) / sum(w_c)`` over the components present for that customer
(weights re-normalised per customer), rounded to one decimal; null only if no component is
present.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from keepwell.health.config import HealthConfig
from keepwell.metrics.daily import event_slug

__all__ = ["component_inputs", "score_frame"]


def component_inputs(inputs: pd.DataFrame, config: HealthConfig) -> pd.DataFrame:
    """The raw input value of every component (NaN = component not present), one row per input
    row, columns = component names."""
    W = config.window_days
    n = len(inputs)

    def col(name: str) -> pd.Series:
        if name in inputs.columns:
            return pd.to_numeric(inputs[name], errors="coerce").astype("float64")
        return pd.Series(np.nan, index=inputs.index, dtype="float64")

    days, prev = col(f"active_days_{W}"), col(f"active_days_prev_{W}")
    pct = col("active_days_pct_change")
    pct = pct.where(~(pct.isna() & (days > 0) & (prev == 0)), 100.0)
    pct = pct.where(~((days == 0) & (prev == 0)))
    pct = pct.where(col("customer_age_days") >= 2 * W)

    ignored = {f"n{W}_{event_slug(e)}" for e in config.ignore_events}
    type_cols = [c for c in inputs.columns if c.startswith(f"n{W}_") and c not in ignored]
    if type_cols:
        breadth = (inputs[type_cols].fillna(0).to_numpy(dtype="float64") > 0).sum(axis=1)
    else:
        breadth = np.zeros(n)
    return pd.DataFrame(
        {
            "usage": days,
            "trend": pct,
            "breadth": pd.Series(breadth.astype("float64"), index=inputs.index),
            "payments": col("payment_issues_90"),
            "nps": col("nps"),
            "csat": col("csat"),
            "support": col(f"tickets_{W}"),
            "risk": col("risk_probability"),
        },
        index=inputs.index,
    )


def score_frame(inputs: pd.DataFrame, config: HealthConfig) -> pd.DataFrame:
    """customer_id, as_of, one ``<component>`` score column per active component (NaN = left
    out), ``health`` (0-100) and ``band`` (red/yellow/green; null when health is null)."""
    raw = component_inputs(inputs, config)
    scores = pd.DataFrame(index=inputs.index)
    weighted = np.zeros(len(inputs))
    total = np.zeros(len(inputs))
    for name in config.active:
        s = config.curve(name).score(raw[name].to_numpy())
        scores[name] = s
        present = ~np.isnan(s)
        w = config.weights[name]
        weighted += np.where(present, w * np.nan_to_num(s), 0.0)
        total += np.where(present, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        health = np.where(total > 0, weighted / total, np.nan)
    health = np.round(health, 1)
    band = pd.Series(
        [None if np.isnan(h) else config.bands.band(h) for h in health],
        index=inputs.index,
        dtype="object",
    )
    out = inputs[["customer_id", "as_of"]].copy()
    for name in config.active:
        out[name] = scores[name].round(1)
    out["health"] = health
    out["band"] = band
    return out
