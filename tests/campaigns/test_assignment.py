"""Audience split maths: exact counts, reproducible assignment, proportions."""

from __future__ import annotations

import pytest

from keepwell.campaigns.assignment import assign, split_counts
from keepwell.errors import InvalidInput


@pytest.mark.parametrize(
    ("total", "holdout", "percents", "expected"),
    [
        (1000, 10, [50, 50], (100, [450, 450])),  # the docs' example
        (7, 0, [50, 50], (0, [4, 3])),  # odd count: remainder to the first (tie) variant
        (10, 15, [100], (2, [8])),  # 1.5 rounds half up to 2
        (10, 0, [33.3, 33.3, 33.4], (0, [3, 3, 4])),  # largest remainder: 3.34 > 3.33
        (3, 50, [70, 30], (2, [1, 0])),  # 1 left: 0.7 vs 0.3 -> A
        (0, 20, [50, 50], (0, [0, 0])),  # empty audience
        (100, 99.5, [100], (100, [0])),  # 99.5 rounds to 100 -> nobody gets it
    ],
)
def test_split_counts(total, holdout, percents, expected) -> None:
    got = split_counts(total, holdout_percent=holdout, variant_percents=percents)
    assert got == expected
    assert got[0] + sum(got[1]) == total


@pytest.mark.parametrize(
    ("holdout", "percents", "field"),
    [
        (100, [100], "holdout_percent"),
        (-1, [100], "holdout_percent"),
        (10, [], "percent"),
        (10, [0, 100], "percent"),
        (10, [-5, 105], "percent"),
    ],
)
def test_split_counts_rejects_bad_shares(holdout, percents, field) -> None:
    with pytest.raises(InvalidInput) as err:
        split_counts(10, holdout_percent=holdout, variant_percents=percents)
    assert err.value.field == field


def test_assignment_is_reproducible_and_exact() -> None:
    ids = list(range(1, 2001))
    first = assign(ids, seed=42, holdout_percent=10, variant_percents=[50, 50])
    again = assign(list(reversed(ids)), seed=42, holdout_percent=10, variant_percents=[50, 50])
    assert first == again  # input order does not matter, only the seed
    groups = list(first.values())
    assert (groups.count(None), groups.count(0), groups.count(1)) == (200, 900, 900)
    other = assign(ids, seed=43, holdout_percent=10, variant_percents=[50, 50])
    assert other != first
    assert sorted(first) == ids


def test_assignment_is_random_not_ordered() -> None:
    """The holdout is not the lowest ids: both halves of the id range are represented."""
    groups = assign(range(1, 1001), seed=1, holdout_percent=20, variant_percents=[100])
    held = [c for c, g in groups.items() if g is None]
    low = sum(c <= 500 for c in held)
    assert len(held) == 200
    # binomial(200, 0.5): 70..130 holds with probability > 0.9999 (and the seed is fixed)
    assert 70 <= low <= 130
