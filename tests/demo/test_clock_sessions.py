"""Time arithmetic and the visit/session layout of the demo simulation."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from keepwell.demo.clock import DAY, Window, ZoneOffsets, add_months, epoch_seconds, month_bounds
from keepwell.demo.names import company_names
from keepwell.demo.sessions import B2B_HOURS, lay_out
from keepwell.demo.simkit import rank_within
from keepwell.demo.writers import NEVER, iso


def _ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ((2024, 1, 31, 9, 30), 1, (2024, 2, 29, 9, 30)),  # leap year clamps to the 29th
        ((2025, 1, 31, 0, 0), 1, (2025, 2, 28, 0, 0)),
        ((2025, 1, 31, 0, 0), 2, (2025, 3, 31, 0, 0)),  # the day comes back
        ((2025, 3, 15, 23, 59), -3, (2024, 12, 15, 23, 59)),
        ((2025, 12, 1, 0, 0), 13, (2027, 1, 1, 0, 0)),
    ],
)
def test_add_months_clamps_the_day_and_keeps_the_time(start, months, expected) -> None:
    assert add_months(np.array([_ts(*start)]), months)[0] == _ts(*expected)


def test_month_bounds_are_calendar_months_with_partial_ends() -> None:
    bounds = month_bounds(_ts(2025, 11, 15), _ts(2026, 2, 10))
    assert bounds.tolist() == [
        _ts(2025, 11, 15),
        _ts(2025, 12, 1),
        _ts(2026, 1, 1),
        _ts(2026, 2, 1),
        _ts(2026, 2, 10),
    ]
    assert month_bounds(_ts(2026, 1, 1), _ts(2026, 3, 1)).tolist() == [
        _ts(2026, 1, 1),
        _ts(2026, 2, 1),
        _ts(2026, 3, 1),
    ]


def test_window_marks_the_crisis_month() -> None:
    window = Window.build(date(2026, 6, 1), months=24, crisis_months=8, zones=("UTC",))
    assert window.periods == 24
    assert window.bounds[window.crisis_period] == _ts(2025, 10, 1)
    assert window.calendar_month(0) == 6


def test_zone_offsets_follow_daylight_saving_time() -> None:
    zones = ZoneOffsets.build(
        ("Europe/Berlin", "America/New_York", "Asia/Kolkata"),
        start=epoch_seconds(date(2026, 1, 1)),
        end=epoch_seconds(date(2026, 12, 31)),
    )
    winter, summer = (
        epoch_seconds(date(2026, 1, 15)) // DAY,
        epoch_seconds(date(2026, 7, 15)) // DAY,
    )
    zone = np.array([0, 1, 2])
    assert zones.to_utc(zone, np.full(3, winter), np.full(3, 9 * 3600)).tolist() == [
        winter * DAY + 8 * 3600,
        winter * DAY + 14 * 3600,
        winter * DAY + 3 * 3600 + 1800,
    ]
    assert zones.to_utc(zone[:2], np.full(2, summer), np.full(2, 9 * 3600)).tolist() == [
        summer * DAY + 7 * 3600,
        summer * DAY + 13 * 3600,
    ]
    late = np.array([summer * DAY + 23 * 3600])  # 23:00 UTC is already tomorrow in Berlin
    assert zones.local_day(np.array([0]), late).tolist() == [summer + 1]


def test_iso_matches_arrow_strftime_and_nulls_missing_instants() -> None:
    seconds = np.array([0, 1_700_000_000, 951_782_400, 4_102_444_799, NEVER, -5])
    expected = pc.strftime(
        pa.array(seconds[:4]).cast(pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%SZ"
    ).to_pylist()
    assert iso(seconds).to_pylist() == [*expected, None, None]
    assert iso(seconds)[2].as_py() == "2000-02-29T00:00:00Z"


def test_lay_out_places_every_event_inside_its_interval() -> None:
    rng = np.random.default_rng(5)
    start = epoch_seconds(date(2026, 3, 1))
    zones = ZoneOffsets.build(("Europe/Berlin", "UTC"), start=start, end=start + 90 * DAY)
    lo = np.array([start, start + 31 * DAY, start + 3 * DAY, start])
    hi = np.array([start + 31 * DAY, start + 61 * DAY, start + 3 * DAY + 3_600, start + 20 * DAY])
    days = np.array([20, 3, 1, 0])
    events = np.array([200, 3, 7, 0])

    timed = lay_out(
        rng,
        zone=np.array([0, 0, 1, 1]),
        lo=lo,
        hi=hi,
        days=days,
        events=events,
        zones=zones,
        hours=B2B_HOURS,
        weekend_keep=0.3,
    )

    assert np.bincount(timed.row, minlength=4).tolist() == events.tolist()
    seconds = timed.occurred_us // 1_000_000
    assert (seconds >= lo[timed.row]).all() and (seconds < hi[timed.row]).all()
    assert (np.diff(timed.row) >= 0).all()
    assert timed.opens_session[timed.rank == 0].all()
    assert timed.n_sessions == timed.opens_session.sum() == timed.session.max() + 1
    local_hour = ((seconds[timed.row == 0] + 3_600) % DAY) // 3_600  # Berlin in winter
    assert ((local_hour >= 7) & (local_hour < 20)).mean() > 0.6


def test_company_names_are_unique_for_the_first_thousands() -> None:
    number = np.arange(1, 9_001)
    names, slugs = company_names(number, number % 10)
    assert len(set(names.to_pylist())) == 9_000
    assert all(s == s.lower() and " " not in s for s in slugs.to_pylist()[:100])


def test_rank_within_numbers_rows_per_group() -> None:
    assert rank_within(np.array([3, 3, 5, 7, 7, 7])).tolist() == [1, 2, 1, 1, 2, 3]
    assert rank_within(np.array([], dtype=np.int64)).tolist() == []
