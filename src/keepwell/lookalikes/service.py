"""Lookalikes: customers or prospects most similar to the best retained customers.

**Seeds** (the customers to look like): the customers named in ``seeds``, or else the *best
retained* customers of the seed segment (``seed_filters``, e.g. ``{"industry": ["retail"]}``):
paying now, current tenure >= ``min_tenure_days`` (180), MRR >= the median MRR of the active
customers, and healthy -- band green in their latest health score when health has been
scored, otherwise active days in the last 28 >= the median.

**Profile** of every customer (as of ``as_of``, default today; data before it only):

* behaviour, standardised (z-scores over all profiled customers): active days, log(1 +
  events) and the number of distinct event types used in the last 28 days -- from the
  features table with usage-based activity (no usage in 90 days = zeros);
* firmographics, one-hot: industry, country, plan (the latest subscription row, trials
  included, so prospects have one), plus seats (``attr_seats``, else the subscription
  quantity) as a standardised log(1 + seats).

Tenure and MRR define the seeds but are left out of the profile: a prospect has neither, and
including them would only rediscover old customers.

**Score**: scikit-learn ``NearestNeighbors`` (Euclidean) fitted on the seeds; a candidate's
distance is the mean distance to its ``neighbours`` nearest seeds, similarity = 1 / (1 +
distance). Candidates: ``customers`` (paying now, not seeds), ``prospects`` (status lead or
trial) or ``all``; the seeds themselves are never candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.billing.models import Subscription
from keepwell.config import Settings
from keepwell.customers.models import Customer
from keepwell.errors import InvalidInput
from keepwell.health import service as health_service
from keepwell.metrics import periods as P
from keepwell.metrics.features import customer_features
from keepwell.metrics.segments import segment_keys
from keepwell.metrics.sources import Sources
from keepwell.survival.data import lifetimes

__all__ = ["CANDIDATES", "LookalikeResult", "find_lookalikes", "profiles"]

CANDIDATES = ("customers", "prospects", "all")
BEHAVIOUR = ["active_days", "log_events", "breadth"]
CATEGORIES = ["industry", "country", "plan"]
NUMERIC = [*BEHAVIOUR, "log_seats"]


@dataclass
class LookalikeResult:
    """Seeds, how they were chosen, and the ranked matches.

    ``matches``: customer_id, name, status, industry, country, plan, distance, similarity,
    nearest_seed (best first).
    """

    seeds: list[str]
    seed_rule: str
    candidates: str
    matches: pd.DataFrame = field(repr=False)


def _today(settings: Settings) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(settings.reporting_timezone)).date()


def _db_profile(db_session: Session) -> pd.DataFrame:
    """customer_id, name, db_status, plan and quantity of the latest subscription row."""
    customers = pd.DataFrame(
        db_session.execute(select(Customer.external_id, Customer.name, Customer.status)).all(),
        columns=["customer_id", "name", "db_status"],
    )
    customers["db_status"] = customers["db_status"].map(lambda s: getattr(s, "value", s))
    subs = pd.DataFrame(
        db_session.execute(
            select(
                Customer.external_id,
                Subscription.plan,
                Subscription.quantity,
                Subscription.started_at,
                Subscription.id,
            ).join(Customer, Customer.id == Subscription.customer_id)
        ).all(),
        columns=["customer_id", "plan", "quantity", "started_at", "id"],
    )
    subs = subs.sort_values(["started_at", "id"]).drop_duplicates("customer_id", keep="last")
    return customers.merge(subs[["customer_id", "plan", "quantity"]], on="customer_id", how="left")


def profiles(
    *, db_session: Session, src: Sources, as_of: date, window_days: int = 28
) -> pd.DataFrame:
    """One row per customer: identity, seed inputs (active, tenure_days, mrr, health band,
    active_days) and the profile columns (see the module docstring)."""
    base = _db_profile(db_session)
    attrs = src.con.execute(src.customers)
    keep = ["customer_id", "industry", "country"] + (
        ["attr_seats"] if "attr_seats" in attrs.columns else []
    )
    df = base.merge(attrs[keep], on="customer_id", how="left")
    cut = P.to_utc_naive(as_of, src.timezone)
    life = lifetimes(src, as_of=cut)[["customer_id", "active", "tenure_days", "mrr_now"]]
    df = df.merge(life, on="customer_id", how="left")
    df["active"] = df["active"].astype("boolean").fillna(False).astype(bool)
    feats = src.con.execute(
        customer_features(
            src, as_of=as_of, window_days=window_days, activity="events", inactivity_days=90
        )
    )
    W = window_days
    types = [c for c in feats.columns if c.startswith(f"n{W}_")]
    behaviour = pd.DataFrame(
        {
            "customer_id": feats["customer_id"],
            "active_days": feats[f"active_days_{W}"].astype("float64"),
            "log_events": np.log1p(feats[f"events_{W}"].astype("float64")),
            "breadth": (feats[types].fillna(0) > 0).sum(axis=1).astype("float64"),
        }
    )
    df = df.merge(behaviour, on="customer_id", how="left")
    df[BEHAVIOUR] = df[BEHAVIOUR].fillna(0.0)
    seats = pd.to_numeric(df.get("attr_seats"), errors="coerce") if "attr_seats" in df else None
    seats = seats if seats is not None else pd.Series(np.nan, index=df.index)
    seats = seats.fillna(pd.to_numeric(df["quantity"], errors="coerce")).fillna(1.0)
    df["log_seats"] = np.log1p(seats.clip(lower=0))
    for col in CATEGORIES:
        df[col] = df[col].astype("object").where(df[col].notna(), "(none)").astype(str)
    health = health_service.latest_scores(db_session=db_session)
    df = df.merge(
        health[["customer_id", "band"]].rename(columns={"band": "health_band"}),
        on="customer_id",
        how="left",
    )
    return df.sort_values("customer_id", ignore_index=True)


def _best_retained(df: pd.DataFrame, *, min_tenure_days: float) -> tuple[pd.Series, str]:
    active = df[df["active"]]
    if active.empty:
        return pd.Series(False, index=df.index), "no active customers"
    mrr_median = float(active["mrr_now"].median())
    rule = df["active"] & (df["tenure_days"] >= min_tenure_days) & (df["mrr_now"] >= mrr_median)
    if df["health_band"].notna().any():
        healthy = df["health_band"] == "green"
        how = "health band green"
    else:
        healthy = df["active_days"] >= float(active["active_days"].median())
        how = "active days >= the median"
    text = f"paying, tenure >= {min_tenure_days:g} days, MRR >= the median, {how}"
    return (rule & healthy).fillna(False), text


def find_lookalikes(
    *,
    db_session: Session,
    settings: Settings,
    seeds: Sequence[str] = (),
    seed_filters: Mapping[str, Sequence[str]] | None = None,
    candidates: str = "customers",
    limit: int = 20,
    neighbours: int = 5,
    min_tenure_days: float = 180,
    as_of: date | None = None,
    sources: Sources | None = None,
) -> LookalikeResult:
    """Rank ``candidates`` by similarity to the seeds (see the module docstring)."""
    if candidates not in CANDIDATES:
        raise InvalidInput(
            f"unknown candidates {candidates!r}", field="candidates", expected=", ".join(CANDIDATES)
        )
    if limit < 1 or neighbours < 1:
        raise InvalidInput("limit and neighbours must be >= 1", field="limit", expected=">= 1")
    if sources is None:
        from keepwell.metrics.sources import open_default

        sources = open_default(settings)
    src = sources
    day = as_of or _today(settings)
    df = profiles(db_session=db_session, src=src, as_of=day)
    if df.empty:
        raise InvalidInput("there are no customers", field="customers", expected="customers")
    if seeds:
        unknown = sorted(set(seeds) - set(df["customer_id"]))
        if unknown:
            raise InvalidInput(
                f"unknown seed customer {unknown[0]!r}", field="seeds", expected="external ids"
            )
        is_seed = df["customer_id"].isin(list(seeds))
        rule = "the customers given"
    else:
        is_seed, rule = _best_retained(df, min_tenure_days=min_tenure_days)
        if seed_filters:
            keys = segment_keys(src, filters=dict(seed_filters))
            allowed = set(src.con.execute(keys)["customer_id"]) if keys is not None else set()
            is_seed = is_seed & df["customer_id"].isin(allowed)
            rule += "; in " + ", ".join(f"{k}={'/'.join(v)}" for k, v in seed_filters.items())
    if not is_seed.any():
        raise InvalidInput(
            f"no customer matches the seed rule ({rule})",
            field="seed_segment",
            expected="a segment with long-tenured, high-MRR, healthy customers",
            hint="widen --seed-segment, lower --min-tenure-days, or name seeds with --seed",
        )
    prospects = df["db_status"].isin(["lead", "trial"])
    pool = {
        "customers": df["active"],
        "prospects": prospects,
        "all": df["active"] | prospects,
    }[candidates] & ~is_seed
    transformer = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORIES),
        ],
        sparse_threshold=0.0,
    )
    X = np.asarray(transformer.fit_transform(df[NUMERIC + CATEGORIES]), dtype="float64")
    seed_x, seed_ids = X[is_seed.to_numpy()], df.loc[is_seed, "customer_id"].to_numpy()
    cand = df[pool.to_numpy()]
    columns = ["customer_id", "name", "db_status", "industry", "country", "plan"]
    if cand.empty:
        matches = pd.DataFrame(columns=[*columns, "distance", "similarity", "nearest_seed"])
    else:
        k = min(neighbours, len(seed_x))
        nn = NearestNeighbors(n_neighbors=k).fit(seed_x)
        dist, idx = nn.kneighbors(X[pool.to_numpy()])
        matches = cand[columns].copy()
        matches["distance"] = dist.mean(axis=1)
        matches["similarity"] = 1.0 / (1.0 + matches["distance"])
        matches["nearest_seed"] = seed_ids[idx[:, 0]]
        matches = matches.sort_values(["distance", "customer_id"], ignore_index=True).head(limit)
    matches = matches.rename(columns={"db_status": "status"})
    return LookalikeResult(
        seeds=sorted(seed_ids.tolist()),
        seed_rule=rule,
        candidates=candidates,
        matches=matches,
    )
