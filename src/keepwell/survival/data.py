"""Customer lifetimes for survival analysis, from paid activity spells (leak-free at a cut-off).

One row per customer who had a paid spell starting before the cut-off ``as_of``:

* ``duration_days`` = end of the customer's **first** activity spell (its first churn) minus
  its first paid start, or, when that spell is still running at ``as_of``, ``as_of`` minus the
  start (then ``churned`` is False: right-censored). A later reactivation does not undo the
  first churn: this is time to first churn.
* ``tenure_days``: for customers active at ``as_of``, the time since the start of their
  *current* spell (the same as duration for customers who never churned); null otherwise.
* Attributes for segments and covariates: every ``customers`` column (``industry``,
  ``country``, ``owner``, ``attr_<name>`` ...), ``plan`` (the plan of the first paid row;
  ties: the higher MRR) and ``mrr`` (MRR of the first paid rows in force at the first start,
  in minor units), ``mrr_now`` (MRR in force at ``as_of``, active customers only, and its
  ``currency``).

Spells use the metrics engine's rules (:mod:`keepwell.metrics.activity`): trials excluded,
gaps up to ``grace_days`` bridged. Rows with zero MRR are not paid activity and are left out
(free plans; a trial that expired without converting, which billing exports often record as
a canceled row at price 0).
"""

from __future__ import annotations

from datetime import UTC, datetime

import ibis
import numpy as np
import pandas as pd

from keepwell.metrics.activity import FAR_FUTURE, bridged_subscriptions, spells
from keepwell.metrics.sources import Sources

__all__ = ["DAYS_PER_MONTH", "known_at", "lifetimes"]

DAYS_PER_MONTH = 365.25 / 12
"""Days in an average month (30.44): durations are fitted in days and shown in months."""


def _naive_utc(at: datetime | None) -> datetime:
    at = at or datetime.now(UTC)
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at


def known_at(src: Sources, cut: datetime) -> Sources:
    """``src`` with the paid subscription rows as they were known at ``cut`` (naive UTC): rows
    with a positive MRR started before it; an end after it is not yet known (open)."""
    subs = src.subscriptions
    cut_lit = ibis.literal(cut, type="timestamp")
    subs = subs.filter((subs.started_at < cut_lit) & (subs.mrr_minor > 0)).mutate(
        ended_at=ibis.ifelse(subs.ended_at > cut_lit, ibis.null("timestamp"), subs.ended_at)
    )
    return Sources(
        con=src.con,
        tables={**src.tables, "subscriptions": subs},
        timezone=src.timezone,
        extra=src.extra,
    )


def lifetimes(src: Sources, *, as_of: datetime | None = None, grace_days: int = 7) -> pd.DataFrame:
    """The lifetimes table (see the module docstring); ``as_of`` default: now (UTC)."""
    cut = _naive_utc(as_of)
    cut_lit = ibis.literal(cut, type="timestamp")
    src = known_at(src, cut)
    sp = spells(src, grace_days=grace_days)
    first = sp.filter(sp.spell_no == 1).select(
        "customer_id", first_start=sp.started_at, first_end=sp.ended_at
    )
    current = sp.filter((sp.started_at <= cut_lit) & (cut_lit < sp.ended_at)).select(
        "customer_id", current_start=sp.started_at
    )
    subs = src.subscriptions
    w = ibis.window(
        group_by=subs.customer_id, order_by=[subs.started_at, subs.mrr_minor.desc(), subs.plan]
    )
    ranked = subs.mutate(_rn=ibis.row_number().over(w))
    first_plan = ranked.filter(ranked._rn == 0).select("customer_id", plan=ranked.plan)
    fs = subs.join(first, "customer_id")
    fs = fs.filter(fs.started_at == fs.first_start)
    start_mrr = fs.group_by("customer_id").aggregate(mrr=fs.mrr_minor.sum())
    rows = bridged_subscriptions(src, grace_days=grace_days)
    now = rows.filter((rows.started_at <= cut_lit) & (cut_lit < rows.ended_at))
    now_mrr = now.group_by("customer_id").aggregate(
        mrr_now=now.mrr_minor.sum(), currency=now.currency.max()
    )

    df = src.con.execute(first)
    for part in (current, first_plan, start_mrr, now_mrr):
        df = df.merge(src.con.execute(part), on="customer_id", how="left")
    customers = src.con.execute(src.customers.drop("signup_at"))
    df = df.merge(customers, on="customer_id", how="left")

    first_end = pd.to_datetime(df["first_end"])
    churned = first_end < pd.Timestamp(FAR_FUTURE)
    end = first_end.where(churned, pd.Timestamp(cut))
    start = pd.to_datetime(df["first_start"])
    df["duration_days"] = (end - start).dt.total_seconds() / 86_400.0
    df["churned"] = churned.to_numpy(dtype=bool)
    current_start = pd.to_datetime(df["current_start"])
    df["tenure_days"] = (pd.Timestamp(cut) - current_start).dt.total_seconds() / 86_400.0
    df["active"] = current_start.notna().to_numpy(dtype=bool)
    df["started_at"] = start
    df["ended_at"] = first_end.where(churned)
    df["mrr"] = df["mrr"].astype("float64")
    df["mrr_now"] = df["mrr_now"].astype("float64").where(df["active"], np.nan)
    lead = [
        "customer_id",
        "started_at",
        "ended_at",
        "duration_days",
        "churned",
        "active",
        "tenure_days",
        "plan",
        "mrr",
        "mrr_now",
        "currency",
    ]
    rest = [c for c in df.columns if c not in lead and c not in _INTERNAL]
    return df[lead + rest].sort_values("customer_id").reset_index(drop=True)


_INTERNAL = {"first_start", "first_end", "current_start"}
