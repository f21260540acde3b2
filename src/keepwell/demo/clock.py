"""Time arithmetic for the demo simulation: epoch seconds, calendar months, time-zone offsets.

All instants are ``int64`` seconds since 1970-01-01 UTC. The simulated history is cut into
calendar months (the first and last may be partial); month arithmetic clamps the day of month
(Jan 31 + 1 month = Feb 28/29), as billing systems do for anniversaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

DAY = 86_400


def epoch_seconds(day: date) -> int:
    """Midnight UTC of ``day`` in epoch seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def add_months(ts: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """``ts`` shifted by whole calendar months, keeping day of month (clamped) and time of day."""
    seconds = np.asarray(ts, dtype=np.int64)
    days = seconds // DAY
    time_of_day = seconds - days * DAY
    day = days.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    day_of_month = (day - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64)
    first = target.astype("datetime64[D]").astype(np.int64)
    length = (target + 1).astype("datetime64[D]").astype(np.int64) - first
    return (first + np.minimum(day_of_month, length - 1)) * DAY + time_of_day


def month_bounds(start: int, end: int) -> np.ndarray:
    """Boundaries of the calendar months covering [start, end): start, 1st of each month, end."""
    first = np.datetime64(start // DAY, "D").astype("datetime64[M]")
    last = np.datetime64((end - 1) // DAY, "D").astype("datetime64[M]")
    inner = np.arange(first + 1, last + 1).astype("datetime64[D]").astype(np.int64) * DAY
    return np.concatenate(([start], inner, [end])).astype(np.int64)


def weekday(day_number: np.ndarray) -> np.ndarray:
    """Monday = 0 ... Sunday = 6 for day numbers since 1970-01-01 (a Thursday)."""
    return (day_number + 3) % 7


@dataclass(frozen=True)
class ZoneOffsets:
    """UTC offsets (seconds) of some IANA zones for every day of a range, DST included.

    ``offsets[z, d]`` is the offset of zone ``z`` at local noon of day ``first_day + d``.
    """

    zones: tuple[str, ...]
    first_day: int
    offsets: np.ndarray

    @classmethod
    def build(cls, zones: tuple[str, ...], *, start: int, end: int) -> ZoneOffsets:
        first_day = start // DAY - 2
        n_days = end // DAY + 3 - first_day
        base = datetime(1970, 1, 1) + timedelta(days=first_day, hours=12)
        table = np.zeros((len(zones), n_days), dtype=np.int64)
        for z, name in enumerate(zones):
            zone = ZoneInfo(name)
            for d in range(n_days):
                offset = (base + timedelta(days=d)).replace(tzinfo=zone).utcoffset()
                table[z, d] = int(offset.total_seconds()) if offset is not None else 0
        return cls(zones=zones, first_day=first_day, offsets=table)

    def _lookup(self, zone: np.ndarray, day: np.ndarray) -> np.ndarray:
        index = np.clip(day - self.first_day, 0, self.offsets.shape[1] - 1)
        return self.offsets[zone, index]

    def local_day(self, zone: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """The local calendar day number of instant ``ts`` in ``zone``."""
        return (ts + self._lookup(zone, ts // DAY)) // DAY

    def to_utc(self, zone: np.ndarray, day: np.ndarray, seconds_of_day: np.ndarray) -> np.ndarray:
        """The instant of local ``day`` + ``seconds_of_day`` in ``zone``."""
        return day * DAY + seconds_of_day - self._lookup(zone, day)


@dataclass(frozen=True)
class Window:
    """The simulated history: [start, end) cut into calendar months at ``bounds``.

    ``crisis_period`` is the first month of the crisis that hits some industries.
    """

    start: int
    end: int
    bounds: np.ndarray
    crisis_period: int
    zones: ZoneOffsets

    @classmethod
    def build(cls, end: date, *, months: int, crisis_months: int, zones: tuple[str, ...]) -> Window:
        stop = epoch_seconds(end)
        start = int(add_months(np.array([stop]), -months)[0])
        bounds = month_bounds(start, stop)
        crisis_start = int(add_months(np.array([stop]), -crisis_months)[0])
        crisis_period = max(int(np.searchsorted(bounds, crisis_start, side="right")) - 1, 0)
        return cls(
            start=start,
            end=stop,
            bounds=bounds,
            crisis_period=crisis_period,
            zones=ZoneOffsets.build(zones, start=start, end=stop),
        )

    @property
    def periods(self) -> int:
        return len(self.bounds) - 1

    def calendar_month(self, t: int) -> int:
        """1..12: the calendar month of period ``t``."""
        month = np.datetime64(int(self.bounds[t]) // DAY, "D").astype("datetime64[M]")
        return int(month.astype(np.int64) % 12) + 1
