"""Reasons: the exact wording per driver, and which drivers a fitted model names."""

from __future__ import annotations

import numpy as np
import pytest

from keepwell.risk.model import GradientBoostingRiskModel, time_split
from keepwell.risk.reasons import drivers_of, explain, reason_text
from tests.risk.conftest import EVENT_TYPES, synthetic


@pytest.mark.parametrize(
    ("driver", "values", "text"),
    [
        (
            "usage",
            {"active_days_28": 4, "active_days_prev_28": 10},
            "active days fell 60% vs the previous 28 days (4 vs 10)",
        ),
        (
            "usage",
            {"active_days_28": 0, "active_days_prev_28": 3},
            "no active days in the last 28 days (3 in the previous 28)",
        ),
        (
            "usage",
            {"active_days_28": 5, "active_days_prev_28": 5, "events_28": 55, "events_prev_28": 100},
            "events fell 45% vs the previous 28 days (55 vs 100)",
        ),
        (
            "usage",
            {"active_days_28": 2, "active_days_prev_28": 1},
            "active on only 2 of the last 28 days",
        ),
        (
            "usage",
            {"active_days_28": 0, "active_days_prev_28": 0},
            "not active in the last 56 days",
        ),
        ("usage", {"active_days_28": 20, "active_days_prev_28": 18}, None),  # healthy: no reason
        ("inactivity", {"days_since_last_event": 19}, "no activity for 19 days"),
        ("inactivity", {"days_since_last_event": None}, "no activity recorded yet"),
        ("inactivity", {"days_since_last_event": 2}, None),
        ("payments", {"failed_invoices_90": 2}, "2 failed payments in the last 90 days"),
        ("payments", {"failed_invoices_90": 1}, "1 failed payment in the last 90 days"),
        ("payments", {"failed_invoices_90": 0}, None),
        ("nps", {"last_nps_score": 3, "days_since_last_nps": 12}, "NPS 3 (detractor) 12 days ago"),
        ("nps", {"last_nps_score": 7, "days_since_last_nps": 1}, "NPS 7 (passive) 1 day ago"),
        ("nps", {"last_nps_score": 10, "days_since_last_nps": 5}, None),
        ("nps", {"last_nps_score": None}, "never answered an NPS survey"),
        ("adoption", {"features_used_28": 2}, "only 2 of 10 features used in the last 28 days"),
        ("adoption", {"features_used_28": 6}, None),
        ("adoption", {"features_used_28": 0}, None),  # no use at all is a usage reason
        ("support", {"tickets_28": 3}, "3 support tickets in the last 28 days"),
        ("support", {"tickets_28": 1}, "1 support ticket in the last 28 days"),
        ("tenure", {"tenure_days": 45}, "customer for only 45 days"),
        ("tenure", {"tenure_days": 400}, None),
        ("value", {"mrr_minor": 2900}, "small account ($29.00 MRR)"),
        ("industry", {"industry": "travel"}, "industry travel: more churn in this segment"),
        ("industry", {"industry": "(none)"}, None),
    ],
)
def test_reason_wording(driver, values, text) -> None:
    assert reason_text(driver, values, event_types=10, currency="USD") == text


def test_reason_wording_with_another_window() -> None:
    text = reason_text("usage", {"active_days_14": 3, "active_days_prev_14": 6}, window_days=14)
    assert text == "active days fell 50% vs the previous 14 days (3 vs 6)"


def test_drivers_group_related_features() -> None:
    features = [
        "active_days_28",
        "events_ratio",
        "days_since_last_event",
        "n28_login",
        "features_used_28",
        "last_nps_score",
        "days_since_last_nps",
        "industry",
        "mystery",
    ]
    groups = drivers_of(features)
    assert groups == {
        "usage": ["active_days_28", "events_ratio"],
        "inactivity": ["days_since_last_event"],
        "adoption": ["n28_login", "features_used_28"],
        "nps": ["last_nps_score", "days_since_last_nps"],
        "industry": ["industry"],
        "mystery": ["mystery"],
    }


@pytest.fixture(scope="module")
def fitted():
    obs = synthetic(customers=600, months=8, seed=4)
    train, test = time_split(obs.frame["as_of"], later=2)
    train, test = obs.where(train), obs.where(test)
    model = GradientBoostingRiskModel(calibration=None).fit(train.X, train.y)
    return model, test


def test_explain_names_the_cause(fitted) -> None:
    model, test = fitted
    f = test.frame
    payers = f[(f["failed_invoices_90"] == 1) & (f["last_nps_score"].isna())]
    reasons = explain(model, payers[["as_of", *model.features_]], currency=["USD"] * len(payers))
    first = [r[0].driver if r else None for r in reasons]
    assert np.mean([d == "payments" for d in first]) > 0.9
    assert reasons[0][0].text == "1 failed payment in the last 90 days"
    assert reasons[0][0].feature == "failed_invoices_90"
    detractors = f[(f["last_nps_score"] <= 3) & (f["failed_invoices_90"] == 0)]
    top = explain(model, detractors[["as_of", *model.features_]])
    assert np.mean([any(r.driver == "nps" for r in rs) for rs in top]) > 0.9
    assert any(r.text.startswith("NPS ") and "(detractor)" in r.text for r in top[0])


def test_explain_only_positive_ordered_and_capped(fitted) -> None:
    model, test = fitted
    X = test.X.head(300)
    reasons = explain(model, X, top=2)
    assert len(reasons) == len(X)
    assert all(len(rs) <= 2 for rs in reasons)
    for rs in reasons:
        contributions = [r.contribution for r in rs]
        assert all(c > 0 for c in contributions)
        assert contributions == sorted(contributions, reverse=True)
        assert len({r.driver for r in rs}) == len(rs)
    assert any(len(rs) == 2 for rs in reasons)
    # the adoption text counts the model's event types
    adoption = [r.text for rs in explain(model, X, top=9) for r in rs if r.driver == "adoption"]
    assert all(
        t.endswith(f"of {len(EVENT_TYPES)} features used in the last 28 days") for t in adoption
    )
    as_dict = (
        reasons[0][0].as_dict()
        if reasons[0]
        else {"driver": "", "feature": "", "text": "", "contribution": 0}
    )
    assert set(as_dict) == {"driver", "feature", "text", "contribution"}


def test_a_safe_customer_gets_no_reasons(fitted) -> None:
    model, test = fitted
    row = test.X.head(1).copy()
    row[["failed_invoices_90", "tickets_28"]] = 0
    row[["active_days_28", "active_days_prev_28", "events_28", "events_prev_28"]] = [20, 20, 60, 60]
    row[["active_days_ratio", "events_ratio", "active_days_pct_change", "events_pct_change"]] = [
        1,
        1,
        0,
        0,
    ]
    row[["last_nps_score", "days_since_last_nps", "days_since_last_event"]] = [10, 5, 1]
    assert all(r.driver not in ("payments", "usage", "nps") for r in explain(model, row)[0])
