"""Per-customer usage features for the usage triggers, read inside the caller's transaction.

Uses the analytics engine (:func:`keepwell.metrics.features.customer_features`) on DuckDB:
operational tables are read through the run's own database connection (so a run sees what
it has not committed yet) and events straight from the event store.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import ibis
from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.customers.models import Customer
from keepwell.errors import KeepwellError


class _SessionBind:
    """Looks like an Engine to :func:`read_operational`: ``connect()`` yields our connection."""

    def __init__(self, db_session: Session) -> None:
        self._session = db_session

    @contextmanager
    def connect(self):
        yield self._session.connection()


def _attach_rollup(src, settings: Settings) -> None:
    """Bring the daily rollup (a derived cache of the event store) up to date and use it."""
    from keepwell.events.store import EventStore
    from keepwell.metrics.rollup import Rollup

    rollup = Rollup.from_settings(settings)
    try:
        rollup.refresh(EventStore.from_settings(settings))
    except (KeepwellError, OSError):  # an unwritable cache: read the raw events instead
        return
    if rollup.files():
        rollup.attach(src)


def usage_features(
    *,
    db_session: Session,
    settings: Settings,
    now: datetime,
    window_days: int = 28,
    rollup: bool = True,
) -> dict[int, dict[str, Any]]:
    """Customer id -> usage features as of today's local date (paying customers only).

    Keys of each row: ``as_of`` (date), ``events_28``, ``events_prev_28``,
    ``events_pct_change`` (None when the previous window is empty), ``days_since_last_event``
    (None = never) and ``tenure_days``. "Today" is ``now``'s date in the reporting time zone;
    its own events are not counted (the last window is the 28 whole days before it). With
    ``rollup`` the daily rollup is refreshed and read instead of the raw events (faster).
    """
    from keepwell.events.store import EventStore
    from keepwell.metrics.features import customer_features
    from keepwell.metrics.sources import Sources, read_operational

    frames = read_operational(_SessionBind(db_session))
    con = ibis.duckdb.connect()
    try:
        con.raw_sql("SET TimeZone = 'UTC'")
        src = Sources.from_frames(con, frames, timezone=settings.reporting_timezone)
        EventStore.from_settings(settings).register(con.con, "kw_events_raw")
        con.con.execute(
            "CREATE OR REPLACE TEMP VIEW kw_events_utc AS SELECT customer_id, event, "
            "CAST(occurred_at AT TIME ZONE 'UTC' AS TIMESTAMP) AS occurred_at, user_id, value "
            "FROM kw_events_raw"
        )
        src.tables["events"] = con.table("kw_events_utc")
        if rollup:
            _attach_rollup(src, settings)
        as_of = now.astimezone(ZoneInfo(settings.reporting_timezone)).date()
        w = window_days
        df = customer_features(src, as_of=as_of, window_days=w, event_types=[]).to_pandas()
    finally:
        con.disconnect()
    ids = dict(db_session.execute(select(Customer.external_id, Customer.id)).all())
    out: dict[int, dict[str, Any]] = {}
    for row in df.itertuples(index=False):
        cid = ids.get(row.customer_id)
        if cid is None:
            continue
        out[cid] = {
            "as_of": as_of,
            "events_28": int(getattr(row, f"events_{w}")),
            "events_prev_28": int(getattr(row, f"events_prev_{w}")),
            "events_pct_change": _num(row.events_pct_change),
            "days_since_last_event": _int(row.days_since_last_event),
            "tenure_days": _int(row.tenure_days),
        }
    return out


def _num(value: Any) -> float | None:
    try:
        import math

        return None if value is None or math.isnan(value) else float(value)
    except TypeError:
        return None


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)
