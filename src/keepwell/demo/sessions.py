"""Turn per-customer-month usage counts into timed events, vectorised (no loop per event).

Input is one row per customer-month with activity: the alive interval ``[lo, hi)``, the number
of active days ``days`` and of events ``events`` (>= ``days``). Each active day becomes a
*visit* at a local time of day drawn from an hour-of-day profile in the customer's time zone
(weekends thinned); the events of the month are spread over its visits (every visit gets one,
the rest land uniformly), and a visit's events are cut into *sessions* of a few events, each
opened by a different user some time later. Times never leave ``[lo, hi)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keepwell.demo.clock import ZoneOffsets, weekday

B2B_HOURS = np.array(
    [1, 1, 1, 1, 1, 2, 4, 10, 22, 30, 32, 30, 22, 26, 30, 30, 26, 18, 10, 6, 4, 3, 2, 1],
    dtype=np.float64,
)
"""Relative activity per local hour for office software (a lunch dip, quiet nights)."""

B2C_HOURS = np.array(
    [4, 2, 1, 1, 1, 1, 3, 6, 9, 10, 11, 12, 14, 13, 12, 12, 13, 15, 18, 22, 25, 24, 18, 9],
    dtype=np.float64,
)
"""Relative activity per local hour for an online shop (evening peak)."""


@dataclass(frozen=True)
class Timed:
    """Events laid out in time, sorted by customer then time within each visit.

    Attributes:
        row: index of the customer-month row each event belongs to.
        occurred_us: event instant, microseconds since the epoch (UTC).
        rank: position of the event within its visit (0 = first).
        session: global session number (0..n_sessions-1); a session's events share a user.
        opens_session: True for the first event of each session.
        n_sessions: number of sessions.
    """

    row: np.ndarray
    occurred_us: np.ndarray
    rank: np.ndarray
    session: np.ndarray
    opens_session: np.ndarray
    n_sessions: int


def lay_out(
    rng: np.random.Generator,
    *,
    zone: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    days: np.ndarray,
    events: np.ndarray,
    zones: ZoneOffsets,
    hours: np.ndarray,
    weekend_keep: float,
    session_size: int = 6,
    gap_seconds: float = 150.0,
    session_gap_seconds: float = 4_500.0,
) -> Timed:
    """Place ``events[i]`` events on ``days[i]`` visits inside ``[lo[i], hi[i])``.

    Rows must be sorted by customer and time (their intervals disjoint per customer); the
    output keeps that order, visits sorted by start within a row. ``zone`` indexes ``zones``
    per row. A weekend visit is kept with chance ``weekend_keep``, else redrawn once.
    """
    n_rows = len(days)
    days = days.astype(np.int64)
    events = events.astype(np.int64)
    visit_row = np.repeat(np.arange(n_rows), days)
    n_visits = len(visit_row)
    v_lo = lo[visit_row]
    span = np.maximum(hi[visit_row] - v_lo, 1)
    v_zone = zone[visit_row]

    instant = v_lo + (rng.random(n_visits) * span).astype(np.int64)
    local_day = zones.local_day(v_zone, instant)
    redraw = (weekday(local_day) >= 5) & (rng.random(n_visits) >= weekend_keep)
    second = v_lo + (rng.random(n_visits) * span).astype(np.int64)
    instant = np.where(redraw, second, instant)
    local_day = np.where(redraw, zones.local_day(v_zone, instant), local_day)

    cdf = np.cumsum(hours) / hours.sum()
    hour = np.searchsorted(cdf, rng.random(n_visits), side="right")
    seconds_of_day = hour * 3_600 + (rng.random(n_visits) * 3_600).astype(np.int64)
    start = zones.to_utc(v_zone, local_day, seconds_of_day)
    outside = (start < v_lo) | (start >= v_lo + span)
    start = np.where(outside, instant, start)

    order = np.lexsort((start, visit_row))
    visit_row = visit_row[order]
    start = start[order]
    v_hi = (v_lo + span)[order]

    # One event per visit, the rest of each row's events on its visits uniformly.
    first_visit = np.zeros(n_rows, dtype=np.int64)
    visit_counts = np.bincount(visit_row, minlength=n_rows)
    first_visit[1:] = np.cumsum(visit_counts)[:-1]
    extra = np.where(days > 0, np.maximum(events - days, 0), 0)
    extra_row = np.repeat(np.arange(n_rows), extra)
    pick = first_visit[extra_row] + (rng.random(len(extra_row)) * days[extra_row]).astype(np.int64)
    per_visit = 1 + np.bincount(pick, minlength=n_visits)

    event_visit = np.repeat(np.arange(n_visits), per_visit)
    n_events = len(event_visit)
    visit_first_event = np.zeros(n_visits, dtype=np.int64)
    visit_first_event[1:] = np.cumsum(per_visit)[:-1]
    rank = np.arange(n_events) - visit_first_event[event_visit]
    opens = rank % session_size == 0
    gap = rng.exponential(1.0, n_events) * np.where(opens, session_gap_seconds, gap_seconds)
    gap[rank == 0] = 0.0
    elapsed = np.cumsum(gap)
    elapsed -= elapsed[visit_first_event][event_visit]
    limit = (v_hi[event_visit] - start[event_visit]) * 1_000_000 - 1
    offset_us = (elapsed * 1_000_000).astype(np.int64) % (limit + 1)  # wrap, never spill
    occurred = start[event_visit] * 1_000_000 + offset_us
    session = np.cumsum(opens) - 1
    return Timed(
        row=visit_row[event_visit],
        occurred_us=occurred,
        rank=rank,
        session=session,
        opens_session=opens,
        n_sessions=int(opens.sum()),
    )
