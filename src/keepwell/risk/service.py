"""Churn-risk service: train, evaluate, score every active customer, rank the work list.

* :func:`train` builds the observations, measures the models out of time, fits LightGBM on
  every labelled observation and saves it (:mod:`keepwell.risk.artifacts`).
* :func:`evaluate` runs the out-of-time comparison alone (LightGBM vs the logistic model vs
  "days since last activity").
* :func:`score_customers` writes one :class:`~keepwell.risk.models.RiskScore` per active
  customer: probability of churning within the model's horizon, band, reasons, value and
  revenue at risk. Scores accumulate as history; scoring the same as_of with the same model
  again replaces that run's rows (idempotent).
* :func:`worklist` ranks the latest run by revenue at risk, with owner and top reasons.

**Bands** (probability of churning within the horizon, 30 days by default): ``high`` from
:data:`HIGH_FROM` (20 %), ``medium`` from :data:`MEDIUM_FROM` (8 %), else ``low``. With a
monthly churn rate around 3 % that is roughly "more than 6x" and "more than 2.5x" the usual
risk.

**Value** = annualised MRR = 12 x the MRR in force at as_of (minor units, the subscription's
currency); **revenue at risk** = probability x value, rounded to a minor unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ibis
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.customers.models import Customer
from keepwell.errors import InvalidInput, NotFound
from keepwell.metrics import periods as P
from keepwell.metrics.activity import bridged_subscriptions
from keepwell.metrics.sources import Sources
from keepwell.risk.artifacts import SavedModel, load_model, save_model
from keepwell.risk.dataset import Observations, build_observations, data_end, snapshot_features
from keepwell.risk.evaluate import Evaluation, evaluate_models
from keepwell.risk.model import GradientBoostingRiskModel
from keepwell.risk.models import RiskScore
from keepwell.risk.reasons import explain
from keepwell.users.models import StaffUser

__all__ = [
    "HIGH_FROM",
    "MEDIUM_FROM",
    "ScoreRun",
    "TrainResult",
    "WorkItem",
    "band_of",
    "default_as_of",
    "evaluate",
    "score_customers",
    "train",
    "worklist",
]

HIGH_FROM = 0.20
MEDIUM_FROM = 0.08
STORED_REASONS = 5
SHOWN_REASONS = 3
BATCH = 5_000

Progress = Callable[[str, int, int], None]


def band_of(probability: float) -> str:
    """``high`` (p >= 0.20), ``medium`` (p >= 0.08) or ``low``."""
    if probability >= HIGH_FROM:
        return "high"
    if probability >= MEDIUM_FROM:
        return "medium"
    return "low"


def _sources(settings: Settings, src: Sources | None) -> Sources:
    if src is not None:
        return src
    from keepwell.metrics.sources import open_default

    return open_default(settings)


def _observations(
    src: Sources,
    *,
    horizon_days: int,
    grace_days: int,
    window_days: int,
    period: str,
    progress: Progress | None,
) -> Observations:
    return build_observations(
        src,
        horizon_days=horizon_days,
        grace_days=grace_days,
        window_days=window_days,
        period=period,
        progress=progress,
    )


def evaluate(
    *,
    settings: Settings,
    src: Sources | None = None,
    horizon_days: int = 30,
    grace_days: int = 7,
    window_days: int = 28,
    period: str = "month",
    test_dates: int | float = 0.25,
    progress: Progress | None = None,
) -> Evaluation:
    """The out-of-time comparison on this home's data (see :mod:`keepwell.risk.evaluate`).

    ``test_dates``: the latest observation dates held out for testing (a count, or a share;
    default the latest quarter of them).
    """
    src = _sources(settings, src)
    obs = _observations(
        src,
        horizon_days=horizon_days,
        grace_days=grace_days,
        window_days=window_days,
        period=period,
        progress=progress,
    )
    return evaluate_models(obs, test_dates=test_dates, progress=progress)


@dataclass
class TrainResult:
    """A trained and saved model, with the out-of-time evaluation behind its metrics."""

    saved: SavedModel
    evaluation: Evaluation | None
    n_observations: int

    @property
    def model_version(self) -> str:
        return self.saved.version


def train(
    *,
    settings: Settings,
    src: Sources | None = None,
    horizon_days: int = 30,
    grace_days: int = 7,
    window_days: int = 28,
    period: str = "month",
    test_dates: int | float = 0.25,
    run_evaluation: bool = True,
    progress: Progress | None = None,
) -> TrainResult:
    """Train the LightGBM risk model on every labelled observation and save it.

    With ``run_evaluation`` (default) the models are first compared out of time and the
    figures go into the saved metadata (``metrics``). Returns the saved model.
    """
    src = _sources(settings, src)
    obs = _observations(
        src,
        horizon_days=horizon_days,
        grace_days=grace_days,
        window_days=window_days,
        period=period,
        progress=progress,
    )
    evaluation = (
        evaluate_models(obs, test_dates=test_dates, progress=progress) if run_evaluation else None
    )
    labelled = obs.labelled
    if labelled.frame.empty:
        raise InvalidInput(
            "no labelled observations: the history is shorter than the horizon",
            field="observations",
            hint="a model needs customers observed for at least horizon + grace days",
        )
    model = GradientBoostingRiskModel(gap_days=obs.gap_days)
    model.fit(labelled.X, labelled.y)
    if progress:
        progress("fit", 1, 1)
    dates = labelled.dates
    metadata: dict[str, Any] = {
        "kind": "churn_risk",
        "features": model.features_,
        "categorical": obs.categorical,
        "event_types": obs.event_types,
        "horizon_days": horizon_days,
        "grace_days": grace_days,
        "window_days": window_days,
        "period": str(period),
        "timezone": obs.timezone,
        "training_window": {
            "first_as_of": dates[0].isoformat(),
            "last_as_of": dates[-1].isoformat(),
            "data_end": obs.data_end.isoformat(),
            "observation_dates": len(dates),
        },
        "n_observations": len(labelled.frame),
        "n_censored": len(obs.frame) - len(labelled.frame),
        "base_rate": model.base_rate_,
        "calibration": model.calibration,
        "params": {k: v for k, v in model.get_params().items() if k != "features"},
        "evaluation": evaluation.summary() if evaluation else None,
        "metrics": evaluation.summary()["metrics"] if evaluation else None,
    }
    saved = save_model(model, settings=settings, metadata=metadata)
    return TrainResult(saved=saved, evaluation=evaluation, n_observations=len(labelled.frame))


def default_as_of(src: Sources) -> date:
    """The day to score as of: the day after the data's last recorded day, at most today
    (reporting time zone). Features use whole days before it."""
    tz = ZoneInfo(src.timezone)
    last = data_end(src).replace(tzinfo=UTC).astimezone(tz).date()
    today = datetime.now(tz).date()
    return min(today, last + timedelta(days=1))


def _currencies(src: Sources, as_of_at: datetime, grace_days: int) -> dict[str, str]:
    """customer external id -> currency of the subscription rows in force at ``as_of_at``."""
    s = bridged_subscriptions(src, grace_days=grace_days)
    at = ibis.literal(as_of_at, type="timestamp")
    s = s.filter((s.started_at <= at) & (at < s.ended_at))
    df = src.con.execute(s.group_by("customer_id").aggregate(currency=s.currency.min()))
    return {str(k): v for k, v in zip(df["customer_id"], df["currency"], strict=True) if v}


@dataclass
class ScoreRun:
    """What one scoring run wrote."""

    model_version: str
    as_of: date
    as_of_at: datetime
    scored_at: datetime
    scored: int
    bands: dict[str, int] = field(default_factory=dict)
    revenue_at_risk_minor: dict[str, int] = field(default_factory=dict)
    replaced: int = 0


def score_customers(
    *,
    db_session: Session,
    settings: Settings,
    as_of: date | None = None,
    src: Sources | None = None,
    model_version: str | None = None,
    progress: Progress | None = None,
) -> ScoreRun:
    """Score every customer active at ``as_of`` with the saved model and store the scores.

    ``as_of`` defaults to :func:`default_as_of`; ``model_version`` to the newest saved
    model. Rows of an earlier run with the same as_of and model are replaced. Flushes, does
    not commit.
    """
    saved = load_model(settings=settings, version=model_version)
    meta = saved.metadata
    model = saved.model
    src = _sources(settings, src)
    as_of = as_of or default_as_of(src)
    as_of_naive = P.to_utc_naive(as_of, src.timezone)
    as_of_at = as_of_naive.replace(tzinfo=UTC)
    window = int(meta["window_days"])
    frame = snapshot_features(
        src,
        as_of=as_of,
        grace_days=int(meta["grace_days"]),
        window_days=window,
        categorical=meta["categorical"],
        event_types=meta["event_types"],
    )
    if progress:
        progress("features", 1, 1)
    ids = dict(db_session.execute(select(Customer.external_id, Customer.id)).all())
    unknown = [c for c in frame["customer_id"] if c not in ids]
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} active customers are not in the store (e.g. {unknown[:3]})",
            field="customer_id",
            expected="the sources of this store",
        )
    currencies = _currencies(src, as_of_naive, int(meta["grace_days"]))
    replaced = db_session.execute(
        delete(RiskScore).where(
            RiskScore.as_of == as_of_at, RiskScore.model_version == saved.version
        )
    ).rowcount
    scored_at = datetime.now(UTC)
    bands: dict[str, int] = {"high": 0, "medium": 0, "low": 0}
    at_risk: dict[str, int] = {}
    total = len(frame)
    for start in range(0, total, BATCH):
        part = frame.iloc[start : start + BATCH]
        X = part[["as_of", *model.features_]]
        p = model.churn_probability(X)
        cur = [currencies.get(c) for c in part["customer_id"]]
        reasons = explain(model, X, window_days=window, top=STORED_REASONS, currency=cur)
        value = (12 * part["mrr_minor"].fillna(0).to_numpy()).astype("int64")
        rows = []
        for i, cid in enumerate(part["customer_id"]):
            prob = float(p[i])
            band = band_of(prob)
            bands[band] += 1
            risk = round(prob * int(value[i]))
            if cur[i]:
                at_risk[cur[i]] = at_risk.get(cur[i], 0) + risk
            rows.append(
                {
                    "customer_id": ids[cid],
                    "scored_at": scored_at,
                    "as_of": as_of_at,
                    "model_version": saved.version,
                    "probability": prob,
                    "band": band,
                    "reasons": [r.as_dict() for r in reasons[i]],
                    "value_minor": int(value[i]),
                    "revenue_at_risk_minor": risk,
                    "currency": cur[i],
                }
            )
        if rows:
            db_session.execute(insert(RiskScore), rows)
        if progress:
            progress("score", min(start + BATCH, total), total)
    db_session.flush()
    return ScoreRun(
        model_version=saved.version,
        as_of=as_of,
        as_of_at=as_of_at,
        scored_at=scored_at,
        scored=total,
        bands=bands,
        revenue_at_risk_minor=at_risk,
        replaced=max(replaced or 0, 0),
    )


@dataclass(frozen=True)
class WorkItem:
    """One line of the CSM work list."""

    customer_id: int
    external_id: str
    name: str
    owner: str | None
    probability: float
    band: str
    value_minor: int | None
    revenue_at_risk_minor: int | None
    currency: str | None
    reasons: list[str]
    as_of: datetime
    model_version: str


def worklist(*, db_session: Session, limit: int = 20, owner: str | None = None) -> list[WorkItem]:
    """The latest scoring run's customers by revenue at risk (highest first), then probability.

    "Latest run" = the newest as_of, and within it the newest scoring time. ``owner`` (an
    e-mail, case-insensitive) keeps that CSM's customers. Raises :class:`NotFound` when
    nothing was scored yet.
    """
    if limit < 1:
        raise InvalidInput(f"limit must be >= 1, got {limit}", field="limit")
    latest = db_session.execute(
        select(RiskScore.as_of, RiskScore.scored_at)
        .order_by(RiskScore.as_of.desc(), RiskScore.scored_at.desc())
        .limit(1)
    ).first()
    if latest is None:
        raise NotFound("no risk scores yet", hint="run `keepwell risk score` first")
    query = (
        select(RiskScore, Customer.external_id, Customer.name, StaffUser.email)
        .join(Customer, Customer.id == RiskScore.customer_id)
        .outerjoin(StaffUser, StaffUser.id == Customer.owner_id)
        .where(RiskScore.as_of == latest.as_of, RiskScore.scored_at == latest.scored_at)
    )
    if owner:
        query = query.where(func.lower(StaffUser.email) == owner.strip().lower())
    query = query.order_by(
        func.coalesce(RiskScore.revenue_at_risk_minor, -1).desc(),
        RiskScore.probability.desc(),
        Customer.external_id,
    ).limit(limit)
    items = []
    for score, external_id, name, email in db_session.execute(query):
        items.append(
            WorkItem(
                customer_id=score.customer_id,
                external_id=external_id,
                name=name,
                owner=email,
                probability=score.probability,
                band=score.band,
                value_minor=score.value_minor,
                revenue_at_risk_minor=score.revenue_at_risk_minor,
                currency=score.currency,
                reasons=[str(r.get("text")) for r in (score.reasons or [])[:SHOWN_REASONS]],
                as_of=score.as_of,
                model_version=score.model_version,
            )
        )
    return items
