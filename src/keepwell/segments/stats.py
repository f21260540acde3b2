"""The per-customer behavioural table (``customer_stats``) that filters read.

:func:`refresh_stats` computes, with the analytics engine (``keepwell.metrics``), each
customer's usage as of the start of a day ``as_of`` (default today, in the reporting time
zone): ``usage_band`` and active days / events in the 28 local days before it (see
:func:`keepwell.metrics.engagement.customer_usage`: daily >= 16 active days, weekly >= 4,
monthly >= 1), plus the latest event before it and the whole days since. Customers with events
but none in the last 28 days are ``less than monthly``; customers with no event at all get no
row (their fields are null). The table is replaced as a whole in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.customers.models import Customer
from keepwell.metrics.sources import Sources
from keepwell.models import utcnow
from keepwell.segments.models import CustomerStats

WINDOW_DAYS = 28
LOOKBACK_DAYS = 90
BANDS = {
    "daily": "daily",
    "weekly": "weekly",
    "monthly": "monthly",
    "less_than_monthly": "less than monthly",
}
_BATCH = 10_000


@dataclass(frozen=True)
class StatsResult:
    """What a refresh wrote: the day, rows written, and customers per usage band."""

    as_of: date
    customers: int
    bands: dict[str, int]


def _today(timezone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def compute_stats(src: Sources, *, as_of: date) -> pd.DataFrame:
    """Per customer (external id) with at least one event before ``as_of``: usage_band,
    active_days_28d, events_28d, last_event_at (aware UTC), days_since_last_event."""
    from keepwell.metrics.engagement import customer_usage

    start = datetime.combine(as_of, time(), tzinfo=ZoneInfo(src.timezone)).astimezone(UTC)
    cutoff = start.replace(tzinfo=None)
    usage = customer_usage(
        src, as_of=as_of, window_days=WINDOW_DAYS, lookback_days=LOOKBACK_DAYS
    ).execute()
    events = src.events
    last = (
        events.filter(events.occurred_at < cutoff)
        .group_by("customer_id")
        .aggregate(last_event_at=events.occurred_at.max())
        .execute()
    )
    frame = last.merge(
        usage[["customer_id", "active_days", "events", "frequency"]], on="customer_id", how="left"
    )
    frame["usage_band"] = frame["frequency"].map(BANDS).fillna("less than monthly")
    frame["active_days_28d"] = frame["active_days"].fillna(0).astype("int64")
    frame["events_28d"] = frame["events"].fillna(0).astype("int64")
    stamps = pd.to_datetime(frame["last_event_at"]).dt.tz_localize("UTC")
    frame["last_event_at"] = stamps
    frame["days_since_last_event"] = (
        (pd.Timestamp(start) - stamps) // pd.Timedelta(days=1)
    ).astype("int64")
    return frame[
        [
            "customer_id",
            "usage_band",
            "active_days_28d",
            "events_28d",
            "last_event_at",
            "days_since_last_event",
        ]
    ]


def refresh_stats(
    *,
    db_session: Session,
    settings: Settings | None = None,
    as_of: date | None = None,
    sources: Sources | None = None,
) -> StatsResult:
    """Recompute ``customer_stats`` for every customer (flushes; the caller commits).

    ``sources`` defaults to :func:`keepwell.metrics.sources.open_default` over ``settings``'
    stores (the operational store must be committed for it to see new customers).
    """
    if sources is None:
        if settings is None:
            raise ValueError("refresh_stats needs settings or sources")
        from keepwell.metrics.sources import open_default

        sources = open_default(settings, engine=db_session.get_bind())
    day = as_of or _today(sources.timezone)
    frame = compute_stats(sources, as_of=day)
    at = datetime.combine(day, time(), tzinfo=ZoneInfo(sources.timezone)).astimezone(UTC)
    ids = dict(db_session.execute(select(Customer.external_id, Customer.id)).all())
    now = utcnow()
    rows: list[dict[str, Any]] = []
    bands: dict[str, int] = dict.fromkeys(BANDS.values(), 0)
    for rec in frame.itertuples(index=False):
        cid = ids.get(rec.customer_id)
        if cid is None:
            continue
        bands[rec.usage_band] += 1
        rows.append(
            {
                "customer_id": cid,
                "as_of": at,
                "usage_band": rec.usage_band,
                "active_days_28d": int(rec.active_days_28d),
                "events_28d": int(rec.events_28d),
                "last_event_at": rec.last_event_at.to_pydatetime(),
                "days_since_last_event": int(rec.days_since_last_event),
                "refreshed_at": now,
            }
        )
    db_session.execute(delete(CustomerStats))
    for start in range(0, len(rows), _BATCH):
        db_session.execute(insert(CustomerStats), rows[start : start + _BATCH])
    db_session.flush()
    return StatsResult(as_of=day, customers=len(rows), bands=bands)
