"""Risk fixtures: hand-made sources on DuckDB and synthetic observations with a known cause."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from keepwell.risk.dataset import LABEL, Observations, feature_columns
from tests.metrics.conftest import duckdb_con, make_sources, subs, ts

__all__ = ["duckdb_con", "make_sources", "subs", "synthetic", "ts"]

EVENT_TYPES = ["export", "login", "report_created"]


def synthetic(
    *, customers: int = 400, months: int = 10, seed: int = 0, start: date = date(2025, 1, 1)
) -> Observations:
    """Observations with the real feature names whose churn is caused by known columns.

    log-odds = -5 + 3.5 x failed_invoices_90 + 2.5 x (active days fell by half or more)
    + 2 x (NPS detractor) + noise; the rest (tenure, tickets, ...) is noise.
    """
    rng = np.random.default_rng(seed)
    dates = list(pd.date_range(start, periods=months, freq="MS").date)
    n = customers * months
    prev = rng.integers(2, 20, n).astype(float)
    fell = rng.random(n) < 0.2
    cur = np.where(fell, np.floor(prev * rng.uniform(0, 0.5, n)), prev + rng.integers(-1, 3, n))
    cur = np.clip(cur, 0, 28)
    failed = (rng.random(n) < 0.04).astype(float)
    nps = np.where(rng.random(n) < 0.5, rng.integers(0, 11, n).astype(float), np.nan)
    detractor = np.nan_to_num(nps, nan=10) <= 6
    logit = -5 + 3.5 * failed + 2.5 * fell + 2 * detractor + rng.normal(0, 0.3, n)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    ev_prev = prev * 3
    ev_cur = cur * 3
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i % customers:05d}" for i in range(n)],
            "as_of": np.repeat(dates, customers),
            "tenure_days": rng.integers(1, 700, n).astype(float),
            "customer_age_days": rng.integers(1, 700, n).astype(float),
            "mrr_minor": rng.choice([2900.0, 9900.0, 29900.0], n),
            "events_28": ev_cur,
            "events_prev_28": ev_prev,
            "events_ratio": ev_cur / ev_prev,
            "events_pct_change": 100 * (ev_cur - ev_prev) / ev_prev,
            "active_days_28": cur,
            "active_days_prev_28": prev,
            "active_days_ratio": cur / prev,
            "active_days_pct_change": 100 * (cur - prev) / prev,
            "days_since_last_event": np.where(cur > 0, rng.integers(1, 5, n), 30).astype(float),
            **{f"n28_{t}": rng.poisson(3, n).astype(float) for t in EVENT_TYPES},
            "failed_invoices_90": failed,
            "last_nps_score": nps,
            "days_since_last_nps": np.where(np.isnan(nps), np.nan, rng.integers(1, 200, n)),
            "tickets_28": rng.poisson(0.2, n).astype(float),
        }
    )
    frame["features_used_28"] = (frame[[f"n28_{t}" for t in EVENT_TYPES]] > 0).sum(axis=1)
    frame["features_used_28"] = frame["features_used_28"].astype(float)
    frame["industry"] = rng.choice(["retail", "travel", "software"], n)
    frame[LABEL] = pd.array(churned, dtype="Int8")
    frame["spell_ended_at"] = pd.NaT
    return Observations(
        frame=frame,
        features=feature_columns(frame, window_days=28, categorical=["industry"]),
        categorical=["industry"],
        event_types=EVENT_TYPES,
        horizon_days=30,
        grace_days=7,
        window_days=28,
        data_end=datetime(2026, 1, 1),
        timezone="UTC",
    )


@pytest.fixture(scope="session")
def synthetic_obs() -> Observations:
    return synthetic()
