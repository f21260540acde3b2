"""Customer lifetime value: subscription LTV and repeat-purchase CLV (``docs/clv.md``).

* **Subscription LTV** (:func:`subscription_ltv`) per active customer:

      ltv = expected remaining lifetime (months) x current MRR x margin

  The remaining lifetime comes from :mod:`keepwell.survival` (conditional on the customer's
  current tenure). Default ``method="weibull"``: the Kaplan-Meier alternative is restricted to
  the observed data and shrinks towards 0 for the oldest customers, which would rank the most
  loyal customers lowest. ``margin`` defaults to 0.8 (gross margin, as the ``ltv`` metric).
* **Repeat-purchase CLV** (:func:`fit_repeat_purchase`, :func:`repeat_purchase_values`) on
  the orders table: BG/NBD + Gamma-Gamma (:mod:`keepwell.clv.repeat`, pymc-marketing).
  Completed orders only (refunds and cancellations are not purchases); one currency at a time.
  ``fit`` saves the fitted models under ``<home>/models/clv``; ``values`` loads them and scores
  every customer's current RFM summary. CLV is revenue x ``margin`` (default 1: revenue).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from keepwell.clv.repeat import RepeatPurchaseModel, rfm_summary
from keepwell.config import Settings
from keepwell.errors import InvalidInput, NotFound
from keepwell.metrics.sources import Sources
from keepwell.survival.service import expected_lifetimes

__all__ = [
    "RepeatPurchaseFit",
    "fit_repeat_purchase",
    "model_dir",
    "order_transactions",
    "repeat_purchase_values",
    "subscription_ltv",
]


def _sources(settings: Settings, sources: Sources | None) -> Sources:
    if sources is not None:
        return sources
    from keepwell.metrics.sources import open_default

    return open_default(settings, refresh_rollup=False)


def _naive(at: datetime | None) -> datetime:
    at = at or datetime.now(UTC)
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _check_margin(margin: float) -> None:
    if not 0 < margin <= 1:
        raise InvalidInput(
            f"margin {margin} is outside (0, 1]", field="margin", expected="e.g. 0.8"
        )


def model_dir(settings: Settings) -> Path:
    """Where ``clv fit`` keeps the fitted repeat-purchase models."""
    return (settings.home / "models" / "clv").resolve()


def subscription_ltv(
    src: Sources,
    *,
    margin: float = 0.8,
    method: str = "weibull",
    horizon_years: float = 10.0,
    by: str | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """customer_id, currency, mrr_minor, remaining_months, ltv_minor (minor units), sorted by
    LTV (highest first). See the module docstring."""
    _check_margin(margin)
    if not horizon_years > 0:
        raise InvalidInput("horizon must be positive", field="horizon_years", expected="> 0")
    life = expected_lifetimes(
        src, by=by, method=method, horizon_days=horizon_years * 365.25, as_of=as_of
    )
    out = pd.DataFrame(
        {
            "customer_id": life["customer_id"],
            "currency": life["currency"],
            "mrr_minor": life["mrr_now"].fillna(0).round().astype("int64"),
            "remaining_months": life["remaining_months"],
        }
    )
    out["ltv_minor"] = (out["remaining_months"] * out["mrr_minor"] * margin).round().astype("int64")
    return out.sort_values(["ltv_minor", "customer_id"], ascending=[False, True], ignore_index=True)


def order_transactions(
    src: Sources, *, as_of: datetime | None = None, currency: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Completed orders before ``as_of`` (now): customer_id, ordered_at, amount (minor units),
    and their currency. Several currencies need ``currency`` to pick one."""
    cut = ibis.literal(_naive(as_of), type="timestamp")
    o = src.orders
    o = o.filter((o.status == "completed") & (o.ordered_at < cut))
    counts = src.con.execute(o.group_by("currency").aggregate(n=o.count()))
    found = sorted(str(c) for c in counts["currency"])
    if not found:
        raise InvalidInput(
            "there are no completed orders",
            field="orders",
            expected="orders with status completed",
            hint="import orders first (or `keepwell demo --business shop`)",
        )
    if currency is None:
        if len(found) > 1:
            raise InvalidInput(
                f"orders are in {len(found)} currencies {found}: choose one",
                field="currency",
                expected=" or ".join(found),
            )
        currency = found[0]
    elif currency not in found:
        raise InvalidInput(
            f"no completed orders in {currency}", field="currency", expected=" or ".join(found)
        )
    o = o.filter(o.currency == currency)
    df = src.con.execute(o.select("customer_id", "ordered_at", amount=o.amount_minor))
    df["ordered_at"] = pd.to_datetime(df["ordered_at"])
    df["amount"] = df["amount"].astype("float64")
    return df, currency


@dataclass
class RepeatPurchaseFit:
    """A fitted repeat-purchase model and its predictions at the observation end."""

    model: RepeatPurchaseModel
    currency: str
    observation_end: pd.Timestamp
    rfm: pd.DataFrame
    values: pd.DataFrame
    saved_to: Path | None


def _values(
    model: RepeatPurchaseModel, rfm: pd.DataFrame, currency: str, margin: float
) -> pd.DataFrame:
    pred = model.predict(rfm)
    out = rfm[["customer_id", "frequency", "recency", "T", "monetary_value"]].merge(
        pred, on="customer_id"
    )
    out["currency"] = currency
    out["clv_minor"] = (out["clv"] * margin).round().astype("int64")
    return out.sort_values(["clv_minor", "customer_id"], ascending=[False, True], ignore_index=True)


def fit_repeat_purchase(
    *,
    settings: Settings,
    sources: Sources | None = None,
    as_of: datetime | None = None,
    currency: str | None = None,
    horizon_days: int = 90,
    months: int = 12,
    discount_rate: float = 0.0,
    margin: float = 1.0,
    save: bool = True,
) -> RepeatPurchaseFit:
    """Fit BG/NBD + Gamma-Gamma on the completed orders before ``as_of`` (now) and, with
    ``save``, keep the models under :func:`model_dir` for :func:`repeat_purchase_values`."""
    _check_margin(margin)
    model = RepeatPurchaseModel(
        horizon_days=horizon_days, months=months, discount_rate=discount_rate
    )
    src = _sources(settings, sources)
    tx, currency = order_transactions(src, as_of=as_of, currency=currency)
    end = pd.Timestamp(_naive(as_of))
    rfm = rfm_summary(tx, observation_end=end)
    model.fit(rfm)
    saved = None
    if save:
        folder = model_dir(settings)
        model.save(folder)
        info = {
            "fitted_at": datetime.now(UTC).isoformat(),
            "observation_end": end.isoformat(),
            "currency": currency,
            "params": model.params_,
            "customers": model.customers_,
            "repeat_customers": model.repeat_customers_,
            "fit_seconds": model.fit_seconds_,
            "notes": model.notes_,
        }
        (folder / "model.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        saved = folder
    return RepeatPurchaseFit(
        model=model,
        currency=currency,
        observation_end=end,
        rfm=rfm,
        values=_values(model, rfm, currency, margin),
        saved_to=saved,
    )


def saved_model_info(settings: Settings) -> dict[str, Any]:
    """The metadata of the saved repeat-purchase model (raises :class:`NotFound`)."""
    path = model_dir(settings) / "model.json"
    if not path.exists():
        raise NotFound("no fitted repeat-purchase model", hint="run `keepwell clv fit` first")
    return json.loads(path.read_text(encoding="utf-8"))


def repeat_purchase_values(
    *,
    settings: Settings,
    sources: Sources | None = None,
    as_of: datetime | None = None,
    horizon_days: int = 90,
    months: int = 12,
    discount_rate: float = 0.0,
    margin: float = 1.0,
) -> pd.DataFrame:
    """Every customer's P(alive), expected purchases, expected spend and CLV (``clv_minor``)
    from the saved model and the orders before ``as_of`` (now), highest CLV first."""
    _check_margin(margin)
    info = saved_model_info(settings)
    model = RepeatPurchaseModel.load(
        model_dir(settings),
        horizon_days=horizon_days,
        months=months,
        discount_rate=discount_rate,
        info=info,
    )
    src = _sources(settings, sources)
    tx, currency = order_transactions(src, as_of=as_of, currency=info["currency"])
    rfm = rfm_summary(tx, observation_end=pd.Timestamp(_naive(as_of)))
    return _values(model, rfm, currency, margin)
