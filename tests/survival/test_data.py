"""Lifetimes from subscription rows: first spell, censoring, grace gaps, cut-off, attributes."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from keepwell.survival.data import lifetimes


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


SUBS = [
    # customer, plan, mrr, start, end
    ("a", "pro", 9900, "2026-01-01", None),  # still active
    ("b", "starter", 2900, "2026-01-01", "2026-03-02"),  # churned after 60 days
    ("b", "pro", 9900, "2026-05-01", None),  # ... and came back: tenure counts from here
    ("c", "starter", 2900, "2026-02-01", "2026-03-01"),  # gap of 5 days: bridged
    ("c", "starter", 2900, "2026-03-06", "2026-04-05"),  # churned 2026-04-05
    ("d", "business", 0, "2026-01-01", "2026-01-15"),  # an expired trial at price 0
    ("e", "pro", 9900, "2026-05-20", "2026-07-01"),  # ends after the cut-off: censored
    ("f", "pro", 9900, "2026-06-10", None),  # starts after the cut-off: not there
]


@pytest.fixture
def src(make_sources):
    subs = pd.DataFrame(
        [
            {
                "customer_id": c,
                "plan": p,
                "mrr_minor": m,
                "currency": "USD",
                "started_at": ts(s),
                "ended_at": ts(e) if e else None,
            }
            for c, p, m, s, e in SUBS
        ]
    )
    customers = pd.DataFrame(
        {
            "customer_id": list("abcdef"),
            "signup_at": ts("2026-01-01"),
            "industry": ["travel", "retail", "travel", None, "retail", "travel"],
            "attr_seats": ["5", "2", "1", "1", "3", "9"],
        }
    )
    return make_sources({"subscriptions": subs, "customers": customers})


def test_lifetimes_hand_checked(src) -> None:
    df = lifetimes(src, as_of=datetime(2026, 6, 1)).set_index("customer_id")
    assert list(df.index) == ["a", "b", "c", "e"]  # d: never paid; f: after the cut-off
    assert df.loc["a", "duration_days"] == 151 and not df.loc["a", "churned"]
    assert df.loc["a", "tenure_days"] == 151 and df.loc["a", "active"]
    assert df.loc["b", "duration_days"] == 60 and df.loc["b", "churned"]
    assert df.loc["b", "tenure_days"] == 31 and df.loc["b", "mrr_now"] == 9900
    assert df.loc["b", "plan"] == "starter" and df.loc["b", "mrr"] == 2900
    assert df.loc["c", "duration_days"] == 63 and df.loc["c", "churned"]  # gap bridged
    assert not df.loc["c", "active"] and pd.isna(df.loc["c", "tenure_days"])
    assert df.loc["e", "duration_days"] == 12 and not df.loc["e", "churned"]  # censored at cut
    assert df.loc["a", "industry"] == "travel" and df.loc["e", "attr_seats"] == "3"


def test_lifetimes_later_cut_off_sees_the_churn(src) -> None:
    df = lifetimes(src, as_of=datetime(2026, 8, 1)).set_index("customer_id")
    assert df.loc["e", "churned"] and df.loc["e", "duration_days"] == 42
    assert "f" in df.index and df.loc["f", "tenure_days"] == 52
