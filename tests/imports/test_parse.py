"""The vectorised parsers against plain-Python oracles (Decimal, datetime)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from keepwell.imports import parse
from keepwell.imports.problems import Problems
from keepwell.imports.validate import currency_exponents, round_half_even_div


def _problems(n: int) -> Problems:
    return Problems(np.arange(1, n + 1))


@given(
    st.lists(st.integers(min_value=0, max_value=10**15), min_size=1, max_size=50),
    st.sampled_from([1, 3, 12]),
)
def test_round_half_even_div_matches_decimal(numerators: list[int], months: int) -> None:
    got = round_half_even_div(
        np.array(numerators, dtype=np.int64), np.full(len(numerators), months)
    )
    expected = [
        int((Decimal(n) / months).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        for n in numerators
    ]
    assert got.tolist() == expected


@given(
    st.lists(
        st.decimals(min_value=0, max_value=10**12, places=3, allow_nan=False),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(["USD", "JPY", "BHD"]),
)
def test_major_units_are_exact_or_rejected(amounts: list[Decimal], code: str) -> None:
    cells = pa.array([str(a) for a in amounts])
    currency = pa.array([code] * len(amounts))
    problems = _problems(len(amounts))
    minor = parse.major_units(
        cells, field="amount", problems=problems, decimals=currency_exponents(currency)
    ).to_pylist()
    exponent = parse.currency_decimals(code)
    for amount, value, bad in zip(amounts, minor, problems.bad, strict=True):
        scaled = amount * 10**exponent
        if scaled == scaled.to_integral_value():
            assert (value, bad) == (int(scaled), False)
        else:
            assert (value, bad) == (None, True)


def test_timestamps_with_and_without_offsets() -> None:
    cells = pa.array(
        [
            "2026-03-01",
            "2026-03-01T09:30",
            "2026-03-01 09:30:15.5",
            "2026-03-01T09:30:00Z",
            "2026-03-01T09:30:00-03:00",
            "2026-03-01T09:30:00+0100",
            None,
            "2026-03-01T25:00",
            "2026-3-1",
        ]
    )
    problems = _problems(len(cells))
    parsed = parse.timestamp(cells, field="at", problems=problems, tz="Europe/Berlin")

    assert parsed.to_pylist()[:7] == [
        datetime(2026, 2, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        datetime(2026, 3, 1, 8, 30, 15, 500000, tzinfo=UTC),
        datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        None,
    ]
    assert problems.bad.tolist() == [False] * 7 + [True, True]


def test_choices_zones_countries_currencies_are_normalised() -> None:
    problems = _problems(3)
    assert parse.choice(
        pa.array(["Active", "LEAD", "gone"]),
        field="status",
        problems=problems,
        choices=("lead", "active"),
    ).to_pylist() == ["active", "lead", None]
    assert parse.time_zone(
        pa.array(["europe/berlin", "UTC", "Nowhere/Town"]), field="tz", problems=problems
    ).to_pylist() == ["Europe/Berlin", "UTC", None]
    assert parse.country(
        pa.array(["de", "EU", None]), field="country", problems=problems
    ).to_pylist() == ["DE", None, None]
    assert parse.currency(
        pa.array(["eur", "JPY", "EURO"]), field="currency", problems=problems
    ).to_pylist() == ["EUR", "JPY", None]
    assert problems.bad.tolist() == [False, True, True]
    assert len(problems) == 4
