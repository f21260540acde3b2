"""Send times at a local time of day in each recipient's own time zone.

``09:00`` on 2026-12-01 is 08:00 UTC in Berlin and 14:00 UTC in New York. Across a DST change
the zone's rules decide: a local time that does not exist (clocks jump forward, e.g. 02:30 in
New York on 2026-03-08) is sent at the same wall-clock offset as before the jump (03:30 local);
a time that happens twice (clocks go back) is sent at the first one. An unknown zone is
treated as UTC and counted.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from keepwell.errors import InvalidInput

__all__ = ["local_send_at", "parse_time_of_day"]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_time_of_day(text: str) -> time:
    """``"09:00"`` -> ``time(9, 0)``; anything else raises :class:`InvalidInput`."""
    match = _HHMM.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"{text!r} is not a time of day", field="send_time", expected="HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def local_send_at(day: date, at: time, zone_name: str | None) -> tuple[datetime, bool]:
    """(UTC instant of ``day`` ``at`` in ``zone_name``, whether the zone was known).

    >>> local_send_at(date(2026, 12, 1), time(9), "America/New_York")
    (datetime.datetime(2026, 12, 1, 14, 0, tzinfo=datetime.timezone.utc), True)
    >>> local_send_at(date(2026, 12, 1), time(9), "Mars/Olympus")[1]
    False
    """
    zone = _zone(zone_name) if zone_name else None
    local = datetime.combine(day, at, tzinfo=zone or UTC)
    return local.astimezone(UTC), zone is not None
