"""Repeat-purchase CLV: BG/NBD + Gamma-Gamma with pymc-marketing (the optional ``clv`` extra).

Model (Fader, Hardie & Lee 2005; Fader, Hardie & Lee 2005b for Gamma-Gamma):

* While alive, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each repeat
  purchase it drops out with probability p ~ Beta(a, b). From each customer's RFM summary
  (``frequency`` = repeat purchases, ``recency`` = time from first to last purchase, ``T`` =
  time from first purchase to the end of the observation) the model gives P(alive) and the
  expected number of purchases in the next t days.
* Each purchase value z ~ Gamma(p, nu), nu ~ Gamma(q, v) per customer, independent of the
  purchase process; the expected spend per purchase shrinks the customer's mean towards the
  population mean p v / (q - 1) the fewer purchases it has.
* CLV over the next ``months`` = sum over months of expected purchases x expected spend,
  discounted at ``discount_rate`` a month (pymc-marketing's ``customer_lifetime_value``).

Both models are fitted by maximum a posteriori with flat priors (``HalfFlat``), i.e. maximum
likelihood, as the classic ``lifetimes`` fitters did; time unit: days. Nothing here re-derives
the likelihoods: pymc-marketing does.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from keepwell.errors import InvalidInput, KeepwellError

__all__ = ["RepeatPurchaseModel", "load_library", "rfm_summary"]

EXTRA_HINT = 'install the optional extra: pip install "keepwell[clv]"'


@dataclass(frozen=True)
class _Library:
    BetaGeoModel: Any
    GammaGammaModel: Any
    Prior: Any
    rfm_summary: Any


def load_library() -> _Library:
    """pymc-marketing's CLV classes, or a clear error naming the ``clv`` extra."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arviz/pymc announce refactors on import
            from pymc_extras.prior import Prior
            from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
            from pymc_marketing.clv import rfm_summary as pm_rfm_summary
    except ImportError as exc:
        raise KeepwellError(
            f"repeat-purchase CLV needs pymc-marketing, which is not installed ({exc.name})",
            hint=EXTRA_HINT,
        ) from None
    return _Library(BetaGeoModel, GammaGammaModel, Prior, pm_rfm_summary)


def rfm_summary(transactions: pd.DataFrame, *, observation_end: pd.Timestamp) -> pd.DataFrame:
    """Per customer: frequency, recency, T (days) and monetary_value (mean repeat purchase).

    ``transactions``: customer_id, ordered_at (naive UTC), amount (a number). Purchases are
    counted per calendar day (two orders on one day are one purchase, their amounts added);
    purchases after ``observation_end`` are ignored. ``frequency`` = purchase days after the
    first; ``recency`` = last purchase day - first; ``T`` = observation end day - first;
    ``monetary_value`` = mean amount of the repeat purchase days (0 without repeats).
    pymc-marketing's ``rfm_summary`` does the counting.
    """
    missing = {"customer_id", "ordered_at", "amount"} - set(transactions.columns)
    if missing:
        raise InvalidInput(
            f"transactions lack {sorted(missing)}",
            field="transactions",
            expected="customer_id, ordered_at, amount",
        )
    empty = pd.DataFrame(columns=["customer_id", "frequency", "recency", "T", "monetary_value"])
    tx = transactions[transactions["ordered_at"] <= observation_end]
    if tx.empty:
        return empty
    day = pd.to_datetime(tx["ordered_at"]).dt.floor("D")
    daily = (
        tx.assign(day=day)
        .groupby(["customer_id", "day"], as_index=False)["amount"]
        .sum()
        .sort_values(["customer_id", "day"])
    )
    lib = load_library()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = lib.rfm_summary(
            daily,
            "customer_id",
            "day",
            monetary_value_col="amount",
            observation_period_end=pd.Timestamp(observation_end).floor("D"),
            time_unit="D",
        )
    out["customer_id"] = out["customer_id"].astype(str)
    return out[["customer_id", "frequency", "recency", "T", "monetary_value"]].sort_values(
        "customer_id", ignore_index=True
    )


class RepeatPurchaseModel:
    """BG/NBD + Gamma-Gamma as one estimator (see the module docstring).

    Parameters: ``horizon_days`` for expected purchases, ``months`` and ``discount_rate``
    (monthly) for CLV. ``fit(rfm)`` -> self; fitted attributes ``params_`` (r, alpha, a, b,
    p, q, v), ``customers_``, ``repeat_customers_``, ``fit_seconds_``, ``notes_`` (library
    warnings); ``predict(rfm)`` -> customer_id, p_alive, expected_purchases,
    expected_spend, clv.

    >>> RepeatPurchaseModel(horizon_days=0)
    Traceback (most recent call last):
    ...
    keepwell.errors.InvalidInput: field 'horizon_days': must be positive (expected e.g. 90)
    """

    def __init__(
        self, *, horizon_days: int = 90, months: int = 12, discount_rate: float = 0.0
    ) -> None:
        if horizon_days < 1:
            raise InvalidInput("must be positive", field="horizon_days", expected="e.g. 90")
        if months < 1:
            raise InvalidInput("must be positive", field="months", expected="e.g. 12")
        if not 0 <= discount_rate < 1:
            raise InvalidInput(
                "must be in [0, 1)", field="discount_rate", expected="a monthly rate, e.g. 0.01"
            )
        self.horizon_days = horizon_days
        self.months = months
        self.discount_rate = discount_rate
        self._bg: Any = None
        self._gg: Any = None

    def __repr__(self) -> str:
        state = f"fitted on {self.customers_} customers" if self._bg is not None else "not fitted"
        return f"<RepeatPurchaseModel BG/NBD + Gamma-Gamma, {state}>"

    @staticmethod
    def _check(rfm: pd.DataFrame) -> None:
        need = {"customer_id", "frequency", "recency", "T", "monetary_value"}
        if not need <= set(rfm.columns):
            raise InvalidInput(
                f"RFM summary lacks {sorted(need - set(rfm.columns))}",
                field="rfm",
                expected=", ".join(sorted(need)),
            )
        if rfm.empty:
            raise InvalidInput("no customers with orders", field="rfm", expected="orders")
        bad = rfm[(rfm["recency"] > rfm["T"]) | (rfm["frequency"] < 0)]
        if not bad.empty:
            raise InvalidInput(
                f"customer {bad.iloc[0]['customer_id']!r} has recency > T or frequency < 0",
                field="rfm",
                expected="0 <= recency <= T",
            )

    def fit(self, rfm: pd.DataFrame) -> Self:
        """Fit BG/NBD on every customer and Gamma-Gamma on those with repeat purchases."""
        self._check(rfm)
        repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
        if len(repeat) < 10 or int(rfm["frequency"].sum()) == 0:
            raise InvalidInput(
                f"only {len(repeat)} customers bought more than once: too few to fit",
                field="rfm",
                expected="at least 10 repeat customers",
            )
        lib = load_library()
        flat = lib.Prior("HalfFlat")
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bg = lib.BetaGeoModel(model_config={"r": flat, "alpha": flat, "a": flat, "b": flat})
            bg.fit(data=_frame(rfm, ["frequency", "recency", "T"]), method="map", progressbar=False)
            gg = lib.GammaGammaModel(model_config={"p": flat, "q": flat, "v": flat})
            gg.fit(
                data=_frame(repeat, ["frequency", "monetary_value"]),
                method="map",
                progressbar=False,
            )
        self.fit_seconds_ = time.perf_counter() - start
        self.notes_ = sorted({str(w.message).splitlines()[0] for w in caught})
        self._bg, self._gg = bg, gg
        self.customers_ = len(rfm)
        self.repeat_customers_ = len(repeat)
        bgp, ggp = bg.fit_summary(), gg.fit_summary()
        self.params_ = {k: float(bgp[k]) for k in ("r", "alpha", "a", "b")}
        self.params_.update({k: float(ggp[k]) for k in ("p", "q", "v")})
        return self

    def predict(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """P(alive), expected purchases in ``horizon_days``, expected spend and CLV."""
        if self._bg is None:
            raise KeepwellError("the model is not fitted", hint="call fit() first")
        self._check(rfm)
        data = _frame(rfm, ["frequency", "recency", "T", "monetary_value"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p_alive = self._bg.expected_probability_alive(data=data)
            purchases = self._bg.expected_purchases(data=data, future_t=self.horizon_days)
            spend = self._gg.expected_customer_spend(data=data)
            clv = self._gg.expected_customer_lifetime_value(
                transaction_model=self._bg,
                data=data.copy(),
                future_t=self.months,
                discount_rate=self.discount_rate,
                time_unit="D",
            )
        return pd.DataFrame(
            {
                "customer_id": rfm["customer_id"].astype(str).to_numpy(),
                "p_alive": _point(p_alive),
                "expected_purchases": _point(purchases),
                "expected_spend": _point(spend),
                "clv": _point(clv),
            }
        )

    def save(self, folder: Path) -> list[Path]:
        """Write both fitted models (pymc-marketing's NetCDF format) into ``folder``."""
        if self._bg is None:
            raise KeepwellError("the model is not fitted", hint="call fit() first")
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "bgnbd.nc", folder / "gamma_gamma.nc"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._bg.save(str(paths[0]))
            self._gg.save(str(paths[1]))
        return paths

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        horizon_days: int = 90,
        months: int = 12,
        discount_rate: float = 0.0,
        info: dict[str, Any] | None = None,
    ) -> RepeatPurchaseModel:
        """A model saved by :meth:`save`."""
        lib = load_library()
        model = cls(horizon_days=horizon_days, months=months, discount_rate=discount_rate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model._bg = _rebuilt(lib.BetaGeoModel.load(str(folder / "bgnbd.nc")))
            model._gg = _rebuilt(lib.GammaGammaModel.load(str(folder / "gamma_gamma.nc")))
        info = info or {}
        model.params_ = dict(info.get("params", {}))
        model.customers_ = int(info.get("customers", 0))
        model.repeat_customers_ = int(info.get("repeat_customers", 0))
        model.fit_seconds_ = float(info.get("fit_seconds", 0.0))
        model.notes_ = list(info.get("notes", []))
        return model


def _rebuilt(model: Any) -> Any:
    """pymc-marketing 0.19's ``load`` restores the fit but not the PyMC graph that predictions
    read their coordinates from: build it again from the stored fit data (no re-fit)."""
    if not hasattr(model, "model"):
        model.build_model(data=model.data)
    return model


def _frame(rfm: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = rfm[["customer_id", *cols]].copy()
    for c in cols:
        out[c] = out[c].astype("float64")
    return out.reset_index(drop=True)


def _point(values: Any) -> np.ndarray:
    """The MAP point estimate per customer from pymc-marketing's (chain, draw, customer)."""
    return np.asarray(values.mean(("chain", "draw")).values, dtype="float64")
