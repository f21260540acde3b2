"""BG/NBD + Gamma-Gamma fitted on data simulated from known parameters (slow: compiles)."""

from __future__ import annotations

import pandas as pd
import pytest

from keepwell.clv.repeat import RepeatPurchaseModel, rfm_summary
from tests.clv.simulate import transactions

pytestmark = pytest.mark.slow

TRUE = {"r": 2.0, "alpha": 40.0, "a": 0.8, "b": 2.5}
"""Mean 0.05 purchases a day: few customers buy twice on one day (which counts once)."""


@pytest.fixture(scope="module")
def fitted():
    orders, end = transactions(6000, **TRUE, p=6.0, q=4.0, v=15.0, seed=11)
    rfm = rfm_summary(orders, observation_end=end)
    return RepeatPurchaseModel(horizon_days=90).fit(rfm), rfm


def test_parameters_recovered(fitted) -> None:
    model, rfm = fitted
    got = model.params_
    assert got["r"] == pytest.approx(TRUE["r"], rel=0.1)
    assert got["alpha"] == pytest.approx(TRUE["alpha"], rel=0.1)
    assert got["a"] == pytest.approx(TRUE["a"], rel=0.15)
    assert got["b"] == pytest.approx(TRUE["b"], rel=0.15)
    # Gamma-Gamma: the population mean spend p v / (q - 1) = 6 * 15 / 3 = 30
    mean_spend = got["p"] * got["v"] / (got["q"] - 1)
    assert mean_spend == pytest.approx(30.0, rel=0.1)
    assert model.customers_ == len(rfm) and 0 < model.repeat_customers_ < len(rfm)


def test_p_alive_ordering_and_predictions(fitted, tmp_path) -> None:
    model, _ = fitted
    cases = pd.DataFrame(
        {
            "customer_id": ["recent", "lapsed", "one_off", "busy_lapsed"],
            "frequency": [5.0, 5.0, 0.0, 20.0],
            "recency": [290.0, 60.0, 0.0, 60.0],
            "T": [300.0, 300.0, 300.0, 300.0],
            "monetary_value": [30.0, 30.0, 0.0, 30.0],
        }
    )
    pred = model.predict(cases).set_index("customer_id")
    alive = pred["p_alive"]
    assert alive["recent"] > 0.8 and alive["recent"] > alive["lapsed"] + 0.2
    assert alive["one_off"] == pytest.approx(1.0)  # no repeat purchase: no dropout yet
    assert alive["busy_lapsed"] < alive["lapsed"]  # long silence after a busy spell
    assert pred.loc["recent", "expected_purchases"] > pred.loc["lapsed", "expected_purchases"]
    assert (pred["clv"] > 0).all() and (pred["expected_spend"] > 0).all()

    model.save(tmp_path)
    info = {"params": model.params_, "customers": model.customers_}
    again = RepeatPurchaseModel.load(tmp_path, horizon_days=90, info=info)
    pd.testing.assert_frame_equal(again.predict(cases), model.predict(cases))
