"""Random, reproducible split of an audience into a holdout group and A/B variants.

Counts are exact: holdout = round(n x holdout%), and the rest is shared out by the variants'
percentages with the largest-remainder method, so 1,000 customers at 10% holdout and 50/50
give 100 / 450 / 450. Who lands where comes from a seeded shuffle of the sorted customer ids:
the same audience and seed always give the same assignment.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from keepwell.errors import InvalidInput

__all__ = ["assign", "split_counts"]


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def split_counts(
    total: int, *, holdout_percent: float, variant_percents: Sequence[float]
) -> tuple[int, list[int]]:
    """(holdout size, [size per variant]) for an audience of ``total``.

    >>> split_counts(1000, holdout_percent=10, variant_percents=[50, 50])
    (100, [450, 450])
    >>> split_counts(10, holdout_percent=0, variant_percents=[33.3, 33.3, 33.4])
    (0, [3, 3, 4])
    """
    if total < 0:
        raise InvalidInput("the audience size cannot be negative", field="total")
    if not 0 <= holdout_percent < 100:
        raise InvalidInput(
            f"holdout of {holdout_percent}%", field="holdout_percent", expected="0 <= x < 100"
        )
    if not variant_percents or any(p <= 0 for p in variant_percents):
        raise InvalidInput(
            "every variant needs a share above 0%", field="percent", expected="0 < x <= 100"
        )
    holdout = _round_half_up(total * holdout_percent / 100)
    rest = total - holdout
    weight = sum(variant_percents)
    exact = [rest * p / weight for p in variant_percents]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return holdout, counts


def assign(
    customer_ids: Sequence[int],
    *,
    seed: int,
    holdout_percent: float,
    variant_percents: Sequence[float],
) -> dict[int, int | None]:
    """customer id -> variant index (0, 1, ...) or None for the holdout group.

    >>> groups = assign(range(1, 11), seed=7, holdout_percent=20, variant_percents=[50, 50])
    >>> sorted(list(groups.values()).count(g) for g in (None, 0, 1))
    [2, 4, 4]
    """
    ids = sorted(set(customer_ids))
    holdout, counts = split_counts(
        len(ids), holdout_percent=holdout_percent, variant_percents=variant_percents
    )
    random.Random(seed).shuffle(ids)
    out: dict[int, int | None] = dict.fromkeys(ids[:holdout])
    start = holdout
    for index, count in enumerate(counts):
        for customer_id in ids[start : start + count]:
            out[customer_id] = index
        start += count
    return out
