"""Local-time scheduling across time zones and DST changes."""

from __future__ import annotations

from datetime import date, time

import pytest

from keepwell.campaigns.schedule import local_send_at, parse_time_of_day
from keepwell.errors import InvalidInput
from tests.factories import at


@pytest.mark.parametrize(
    ("day", "zone", "expected"),
    [
        (date(2026, 12, 1), "Europe/Berlin", at(2026, 12, 1, 8)),  # CET = UTC+1
        (date(2026, 12, 1), "America/New_York", at(2026, 12, 1, 14)),  # EST = UTC-5
        (date(2026, 12, 1), "Asia/Tokyo", at(2026, 12, 1, 0)),  # UTC+9
        (date(2026, 12, 1), "Asia/Kolkata", at(2026, 12, 1, 3, 30)),  # UTC+5:30
        (date(2026, 12, 1), "UTC", at(2026, 12, 1, 9)),
        # New York springs forward on 2026-03-08: 9:00 is EDT (UTC-4) that day, EST the day before
        (date(2026, 3, 7), "America/New_York", at(2026, 3, 7, 14)),
        (date(2026, 3, 8), "America/New_York", at(2026, 3, 8, 13)),
        # Berlin: CET until 2026-03-29, CEST (UTC+2) from that day; back on 2026-10-25
        (date(2026, 3, 28), "Europe/Berlin", at(2026, 3, 28, 8)),
        (date(2026, 3, 29), "Europe/Berlin", at(2026, 3, 29, 7)),
        (date(2026, 10, 25), "Europe/Berlin", at(2026, 10, 25, 8)),
        # Sydney is on daylight time (UTC+11) in December
        (date(2026, 12, 1), "Australia/Sydney", at(2026, 11, 30, 22)),
    ],
)
def test_nine_local(day, zone, expected) -> None:
    assert local_send_at(day, time(9), zone) == (expected, True)


def test_dst_gap_and_overlap() -> None:
    # 02:30 does not exist in New York on 2026-03-08: sent at 07:30 UTC (= 03:30 EDT)
    assert local_send_at(date(2026, 3, 8), time(2, 30), "America/New_York")[0] == at(
        2026, 3, 8, 7, 30
    )
    # 01:30 happens twice on 2026-11-01: the first one (EDT, UTC-4) is used
    assert local_send_at(date(2026, 11, 1), time(1, 30), "America/New_York")[0] == at(
        2026, 11, 1, 5, 30
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", None, "../etc/passwd", "UTC+3"])
def test_unknown_zone_is_utc(zone) -> None:
    assert local_send_at(date(2026, 12, 1), time(9), zone) == (at(2026, 12, 1, 9), False)


@pytest.mark.parametrize("text", ["9:00", "24:00", "09:60", "0900", "", "09:00:00", "noon"])
def test_bad_time_of_day(text) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_time_of_day(text)
    assert err.value.field == "send_time"


def test_time_of_day() -> None:
    assert parse_time_of_day(" 23:59 ") == time(23, 59)
