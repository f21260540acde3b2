"""A customer's daily usage from the rollup (one customer's rows only; no raw-event scan)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from keepwell.config import Settings
from keepwell.metrics.rollup import Rollup


@dataclass(frozen=True)
class UsageDay:
    day: date
    events: int


def daily_events(
    settings: Settings, *, external_id: str, days: int = 90, today: date | None = None
) -> list[UsageDay]:
    """Events per day for the ``days`` days up to ``today`` (reporting zone), zeros included.

    Reads the rollup as last refreshed (pages never refresh it; ``keepwell report warm``, the
    dashboard and reports do).
    """
    today = today or date.today()
    since = today - timedelta(days=days - 1)
    rollup = Rollup.from_settings(settings)
    counts: dict[date, int] = {}
    if rollup.files():
        with duckdb.connect() as con:
            rows = con.execute(
                f"SELECT day, CAST(sum(events) AS BIGINT) FROM ({rollup.sql(exact=False)}) "
                "WHERE customer_id = ? AND day >= ? AND day <= ? GROUP BY day",
                [external_id, since, today],
            ).fetchall()
        counts = {d: int(n) for d, n in rows}
    return [
        UsageDay(since + timedelta(days=i), counts.get(since + timedelta(days=i), 0))
        for i in range(days)
    ]


def bars(usage: list[UsageDay], *, width: int = 720, height: int = 120) -> list[dict]:
    """SVG bar geometry for ``usage`` (x, y, w, h and a tooltip per day)."""
    top = max((u.events for u in usage), default=0) or 1
    step = width / max(len(usage), 1)
    out = []
    for i, u in enumerate(usage):
        h = round(u.events / top * (height - 4), 1)
        out.append(
            {
                "x": round(i * step, 1),
                "y": round(height - h, 1),
                "w": round(max(step - 1, 1), 1),
                "h": h,
                "label": f"{u.day.isoformat()}: {u.events} events",
            }
        )
    return out
