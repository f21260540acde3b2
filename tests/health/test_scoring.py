"""Component inputs and the weighted, re-normalised health score on hand-made inputs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from keepwell.health.config import HealthConfig
from keepwell.health.scoring import component_inputs, score_frame

D = date(2026, 6, 1)


def inputs(**overrides) -> pd.DataFrame:
    """One customer's inputs; keyword lists make several rows."""
    base = {
        "customer_id": ["a"],
        "as_of": [D],
        "customer_age_days": [200],
        "active_days_28": [8],
        "active_days_prev_28": [8],
        "active_days_pct_change": [0.0],
        "n28_login": [10],
        "n28_export": [2],
        "n28_comment": [0],
        "payment_issues_90": [0],
        "nps": [None],
        "csat": [None],
        "tickets_28": [0],
    }
    base.update(overrides)
    n = max(len(v) for v in base.values())
    return pd.DataFrame({k: v * n if len(v) == 1 else v for k, v in base.items()})


def test_hand_computed_score_with_missing_components() -> None:
    cfg = HealthConfig(weights={"usage": 2, "trend": 1, "breadth": 1, "nps": 1, "risk": 5})
    got = score_frame(inputs(), cfg).iloc[0]
    # usage 8 days -> 80; trend 0 % -> 85; breadth 1 type (login ignored) -> 30;
    # nps and risk missing -> left out, weights re-normalised over 2 + 1 + 1
    assert (got.usage, got.trend, got.breadth) == (80.0, 85.0, 30.0)
    assert np.isnan(got.nps) and np.isnan(got.risk)
    assert got.health == pytest.approx(round((2 * 80 + 85 + 30) / 4, 1))
    assert got.band == "yellow"  # 68.75


def test_risk_and_survey_components_when_present() -> None:
    cfg = HealthConfig(weights={"usage": 1, "nps": 1, "csat": 1, "risk": 1})
    frame = inputs(nps=[6], csat=[4], risk_probability=[0.15])
    got = score_frame(frame, cfg).iloc[0]
    assert (got.usage, got.nps, got.csat, got.risk) == (80.0, 40.0, 80.0, 55.0)
    assert got.health == pytest.approx(63.8)
    assert got.band == "yellow"


def test_trend_rules() -> None:
    frame = inputs(
        customer_id=["steady", "new_usage", "dormant", "young", "falling"],
        customer_age_days=[200, 200, 200, 30, 200],
        active_days_28=[8, 5, 0, 8, 2],
        active_days_prev_28=[8, 0, 0, 8, 10],
        active_days_pct_change=[0.0, None, 0.0, 0.0, -80.0],
    )
    trend = component_inputs(frame, HealthConfig())["trend"].tolist()
    assert trend[0] == 0.0 and trend[1] == 100.0 and trend[4] == -80.0
    assert np.isnan(trend[2]) and np.isnan(trend[3])


def test_breadth_ignores_configured_events_and_payments_curve() -> None:
    frame = inputs(n28_comment=[3], payment_issues_90=[1])
    raw = component_inputs(frame, HealthConfig(ignore_events=[]))
    assert raw["breadth"].iloc[0] == 3  # login, export, comment
    scored = score_frame(frame, HealthConfig())
    assert scored["breadth"].iloc[0] == 50.0 and scored["payments"].iloc[0] == 40.0


def test_red_customer_and_nothing_present() -> None:
    frame = inputs(
        customer_id=["bad", "blank"],
        active_days_28=[0, None],
        active_days_prev_28=[12, None],
        active_days_pct_change=[-100.0, None],
        n28_login=[0, 0],
        n28_export=[0, 0],
        payment_issues_90=[2, None],
        tickets_28=[5, None],
    )
    cfg = HealthConfig(weights={"usage": 1, "trend": 1, "payments": 1, "support": 1})
    got = score_frame(frame, cfg)
    assert got.loc[0, "health"] == pytest.approx((0 + 0 + 15 + 10) / 4, abs=0.05)
    assert got.loc[0, "band"] == "red"
    assert np.isnan(got.loc[1, "health"]) and got.loc[1, "band"] is None
