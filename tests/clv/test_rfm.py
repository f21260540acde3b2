"""The RFM summary from orders against hand values; the estimator's input checks."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from keepwell.clv.repeat import RepeatPurchaseModel, load_library, rfm_summary
from keepwell.errors import InvalidInput, KeepwellError


def tx(*rows) -> pd.DataFrame:
    return pd.DataFrame(
        [(c, pd.Timestamp(t), float(a)) for c, t, a in rows],
        columns=["customer_id", "ordered_at", "amount"],
    )


def test_rfm_hand_values() -> None:
    orders = tx(
        ("a", "2026-01-01 10:00", 50),  # first purchase: not in frequency or monetary value
        ("a", "2026-01-11 09:00", 20),
        ("a", "2026-01-11 18:00", 10),  # same day: one purchase of 30
        ("a", "2026-01-31 12:00", 60),
        ("b", "2026-02-20 08:00", 99),  # one purchase only
        ("c", "2026-03-01 00:00", 10),
        ("c", "2026-03-05 00:00", 40),
        ("c", "2026-03-20 00:00", 80),  # after the observation end: ignored
    )
    got = rfm_summary(orders, observation_end=pd.Timestamp("2026-03-10 15:00")).set_index(
        "customer_id"
    )
    assert got.loc["a"].to_dict() == {
        "frequency": 2.0,  # repeat purchase days: Jan 11, Jan 31
        "recency": 30.0,  # Jan 31 - Jan 1
        "T": 68.0,  # Mar 10 - Jan 1
        "monetary_value": 45.0,  # mean of 30 and 60
    }
    assert got.loc["b"].to_dict() == {
        "frequency": 0.0,
        "recency": 0.0,
        "T": 18.0,
        "monetary_value": 0.0,
    }
    assert got.loc["c", "frequency"] == 1 and got.loc["c", "monetary_value"] == 40.0
    assert got.loc["c", "T"] == 9.0


def test_rfm_bad_input() -> None:
    with pytest.raises(InvalidInput, match="lack"):
        rfm_summary(
            pd.DataFrame({"customer_id": ["a"]}), observation_end=pd.Timestamp("2026-01-01")
        )
    empty = rfm_summary(tx(("a", "2026-05-01", 1)), observation_end=pd.Timestamp("2026-01-01"))
    assert empty.empty


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon_days": 0}, "horizon_days"),
        ({"months": 0}, "months"),
        ({"discount_rate": 1.5}, "discount_rate"),
    ],
)
def test_model_settings_are_checked(kwargs, field) -> None:
    with pytest.raises(InvalidInput) as info:
        RepeatPurchaseModel(**kwargs)
    assert info.value.field == field


def test_model_input_checks() -> None:
    model = RepeatPurchaseModel()
    bad = pd.DataFrame(
        {
            "customer_id": ["a"],
            "frequency": [1.0],
            "recency": [9.0],
            "T": [5.0],
            "monetary_value": [3.0],
        }
    )
    with pytest.raises(InvalidInput, match="recency > T"):
        model.fit(bad)
    with pytest.raises(InvalidInput, match="lacks"):
        model.fit(bad.drop(columns="T"))
    few = bad.assign(recency=1.0)
    with pytest.raises(InvalidInput, match="too few to fit"):
        model.fit(few)
    with pytest.raises(KeepwellError, match="not fitted"):
        model.predict(few)


def test_missing_extra_is_named(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pymc_marketing", None)
    monkeypatch.setitem(sys.modules, "pymc_marketing.clv", None)
    with pytest.raises(KeepwellError) as info:
        load_library()
    assert "pymc-marketing" in info.value.message and "keepwell[clv]" in info.value.hint
