"""Health service: score customers, keep the history, backtest a configuration.

* :func:`score_health` computes every active customer's health as of a day and writes one
  :class:`~keepwell.health.models.HealthScore` row each. Re-scoring the same day with the
  same configuration replaces that run's rows (idempotent); other days stay as history.
* :func:`history` reads a customer's scores; :func:`latest_scores` everyone's newest.
* :func:`backtest_health` scores past days leak-free and measures how well the health ranked
  the customers who churned next (:mod:`keepwell.health.backtest`).

The ``risk`` component reads the latest stored churn-risk score (``risk_scores``) of each
customer as of the snapshot; without one it is left out and the other weights re-normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.customers import service as customer_service
from keepwell.customers.models import Customer
from keepwell.errors import InvalidInput
from keepwell.health.backtest import BacktestResult, churn_labels, evaluate, observation_dates
from keepwell.health.config import HealthConfig
from keepwell.health.inputs import health_inputs
from keepwell.health.models import HealthScore
from keepwell.health.scoring import score_frame
from keepwell.metrics import periods as P
from keepwell.metrics.sources import Sources
from keepwell.models import utcnow
from keepwell.risk.models import RiskScore

__all__ = [
    "HealthRun",
    "backtest_health",
    "compute_health",
    "history",
    "latest_scores",
    "score_health",
]


@dataclass(frozen=True)
class HealthRun:
    """What one scoring run wrote."""

    as_of: date
    config: str
    scored: int
    bands: dict[str, int]
    scores: pd.DataFrame


def _today(settings: Settings) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(settings.reporting_timezone)).date()


def _sources(settings: Settings, sources: Sources | None) -> Sources:
    if sources is not None:
        return sources
    from keepwell.metrics.sources import open_default

    return open_default(settings)


def _risk_probabilities(
    db_session: Session, *, days: Sequence[date], tz: str, scored_before_snapshot: bool
) -> pd.DataFrame:
    """customer_id (external), as_of, risk_probability: the latest stored risk score per
    customer with ``as_of`` <= the snapshot (and, for backtests, scored before it)."""
    frames = []
    for day in days:
        at = P.to_utc_naive(day, tz).replace(tzinfo=UTC)
        query = (
            select(Customer.external_id, RiskScore.probability, RiskScore.as_of, RiskScore.id)
            .join(Customer, Customer.id == RiskScore.customer_id)
            .where(RiskScore.as_of <= at)
        )
        if scored_before_snapshot:
            query = query.where(RiskScore.scored_at < at)
        rows = db_session.execute(query).all()
        if not rows:
            continue
        df = pd.DataFrame(rows, columns=["customer_id", "risk_probability", "r_as_of", "r_id"])
        df = df.sort_values(["r_as_of", "r_id"]).drop_duplicates("customer_id", keep="last")
        df["as_of"] = day
        frames.append(df[["customer_id", "as_of", "risk_probability"]])
    if not frames:
        return pd.DataFrame(columns=["customer_id", "as_of", "risk_probability"])
    return pd.concat(frames, ignore_index=True)


def compute_health(
    *,
    db_session: Session,
    src: Sources,
    config: HealthConfig,
    as_of: Sequence[date],
    risk_scored_before_snapshot: bool = False,
) -> pd.DataFrame:
    """Health of every customer active at each day in ``as_of`` (nothing written).

    Columns: customer_id (external id), as_of, one score per active component, health, band.
    """
    if not as_of:
        raise InvalidInput("no as_of dates given", field="as_of", expected="one or more dates")
    inputs = health_inputs(src, as_of=as_of, window_days=config.window_days)
    if "risk" in config.active and not inputs.empty:
        risk = _risk_probabilities(
            db_session,
            days=sorted(set(as_of)),
            tz=src.timezone,
            scored_before_snapshot=risk_scored_before_snapshot,
        )
        inputs = inputs.merge(risk, on=["customer_id", "as_of"], how="left")
    return score_frame(inputs, config)


def _internal_ids(db_session: Session, external_ids: Sequence[str]) -> dict[str, int]:
    wanted = set(external_ids)
    rows = db_session.execute(select(Customer.external_id, Customer.id)).all()
    return {ext: cid for ext, cid in rows if ext in wanted}


def _components(row: pd.Series, names: Sequence[str]) -> dict[str, float | None]:
    return {n: (None if pd.isna(row[n]) else float(row[n])) for n in names}


def score_health(
    *,
    db_session: Session,
    settings: Settings,
    config: HealthConfig | None = None,
    as_of: date | None = None,
    sources: Sources | None = None,
) -> HealthRun:
    """Score every active customer as of ``as_of`` (default: today in the reporting time zone,
    i.e. data up to yesterday) and write their :class:`HealthScore` rows (flushes only).

    ``HealthScore.as_of`` is the snapshot instant (local midnight at the start of ``as_of``,
    UTC). Rows of an earlier run with the same ``as_of`` and configuration name are replaced.
    """
    config = config or HealthConfig()
    day = as_of or _today(settings)
    src = _sources(settings, sources)
    scores = compute_health(db_session=db_session, src=src, config=config, as_of=[day])
    ids = _internal_ids(db_session, scores["customer_id"].tolist())
    missing = sorted(set(scores["customer_id"]) - set(ids))
    if missing:
        raise InvalidInput(
            f"{len(missing)} scored customers are not in the store (first: {missing[0]!r})",
            field="customer_id",
            hint="the metrics sources and the database session must be the same store",
        )
    snapshot = P.to_utc_naive(day, src.timezone).replace(tzinfo=UTC)
    db_session.execute(
        delete(HealthScore).where(HealthScore.as_of == snapshot, HealthScore.config == config.name)
    )
    now = utcnow()
    names = config.active
    rows = [
        {
            "customer_id": ids[r.customer_id],
            "scored_at": now,
            "as_of": snapshot,
            "score": float(r.health),
            "band": r.band,
            "components": _components(r, names),
            "config": config.name,
        }
        for _, r in scores.iterrows()
        if not pd.isna(r.health)
    ]
    if rows:
        db_session.execute(insert(HealthScore), rows)
    db_session.flush()
    bands = scores["band"].value_counts().to_dict()
    return HealthRun(
        as_of=day,
        config=config.name,
        scored=len(rows),
        bands={b: int(bands.get(b, 0)) for b in ("red", "yellow", "green")},
        scores=scores,
    )


def history(
    *, db_session: Session, ref: str, limit: int = 50
) -> tuple[Customer, list[HealthScore]]:
    """A customer (external id or ``#id``) and its health scores, newest snapshot first."""
    if limit < 1:
        raise InvalidInput("limit must be >= 1", field="limit", expected="a positive number")
    customer = customer_service.get_or_raise(db_session=db_session, ref=ref)
    rows = db_session.scalars(
        select(HealthScore)
        .where(HealthScore.customer_id == customer.id)
        .order_by(HealthScore.as_of.desc(), HealthScore.scored_at.desc(), HealthScore.id.desc())
        .limit(limit)
    )
    return customer, list(rows)


def latest_scores(*, db_session: Session, config: str | None = None) -> pd.DataFrame:
    """customer_id (external), health, band, as_of: each customer's newest health score
    (optionally of one configuration); empty when nothing was scored."""
    query = select(
        Customer.external_id,
        HealthScore.score,
        HealthScore.band,
        HealthScore.as_of,
        HealthScore.scored_at,
        HealthScore.id,
    ).join(Customer, Customer.id == HealthScore.customer_id)
    if config is not None:
        query = query.where(HealthScore.config == config)
    newest = (
        select(HealthScore.customer_id, func.max(HealthScore.as_of).label("m"))
        .group_by(HealthScore.customer_id)
        .subquery()
    )
    query = query.join(
        newest,
        (newest.c.customer_id == HealthScore.customer_id) & (newest.c.m == HealthScore.as_of),
    )
    rows = db_session.execute(query).all()
    df = pd.DataFrame(rows, columns=["customer_id", "health", "band", "as_of", "scored_at", "id"])
    df = df.sort_values(["scored_at", "id"]).drop_duplicates("customer_id", keep="last")
    return df[["customer_id", "health", "band", "as_of"]].reset_index(drop=True)


def backtest_health(
    *,
    db_session: Session,
    settings: Settings,
    config: HealthConfig | None = None,
    dates: Sequence[date] | None = None,
    periods: int = 6,
    horizon_days: int = 30,
    end: date | None = None,
    sources: Sources | None = None,
) -> BacktestResult:
    """Score past days leak-free and measure how well health ranked later churners.

    ``dates`` (default: the first day of each of the last ``periods`` months whose label
    window ends before ``end``, default today). Raises :class:`InvalidInput` for a date whose
    label window is not complete or when no observation churned.
    """
    config = config or HealthConfig()
    if horizon_days < 1:
        raise InvalidInput("horizon must be at least 1 day", field="horizon_days", expected=">= 1")
    grace = 7
    end = end or _today(settings)
    days = (
        sorted(set(dates))
        if dates
        else observation_dates(
            end=end, periods=periods, horizon_days=horizon_days, grace_days=grace
        )
    )
    for day in days:
        if day + pd.Timedelta(days=horizon_days + grace).to_pytimedelta() > end:
            raise InvalidInput(
                f"the churn label of {day} is not complete before {end}",
                field="dates",
                expected=f"dates at least {horizon_days + grace} days before the end of the data",
            )
    src = _sources(settings, sources)
    scores = compute_health(
        db_session=db_session,
        src=src,
        config=config,
        as_of=days,
        risk_scored_before_snapshot=True,
    )
    labels = churn_labels(src, as_of=days, horizon_days=horizon_days, grace_days=grace)
    scored = scores.merge(labels, on=["customer_id", "as_of"], how="inner")
    if scored.empty or not scored["churned"].any():
        raise InvalidInput(
            "no customer churned after the observation dates: nothing to rank",
            field="dates",
            expected="dates followed by some churn",
        )
    result = evaluate(
        scored, config=config.name, components=config.active, horizon_days=horizon_days
    )
    result.dates = days
    return result
