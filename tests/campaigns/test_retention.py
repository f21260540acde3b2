"""Retention-effect maths against published and hand-computed values."""

from __future__ import annotations

import math

import pytest

from keepwell.campaigns.retention import churn_effect, newcombe_interval, wilson_interval


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(56, 70), (48, 80), (0, 10), (10, 10), (3, 40)])
def test_wilson_matches_the_formula(k, n) -> None:
    assert wilson_interval(k, n) == pytest.approx(_wilson_by_hand(k, n), abs=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
        ((56, 70), (48, 80), (0.2, 0.0524, 0.3339)),
        ((9, 10), (3, 10), (0.6, 0.1705, 0.8090)),
        ((6, 7), (2, 7), (0.5714, 0.0582, 0.8062)),
        ((5, 56), (0, 29), (0.0893, -0.0381, 0.1926)),
        ((0, 10), (0, 20), (0.0, -0.1611, 0.2775)),
    ],
)
def test_newcombe_published_values(a, b, expected) -> None:
    got = newcombe_interval(*a, *b)
    assert [round(x, 4) for x in got] == pytest.approx(list(expected), abs=1e-4)


def test_effect_with_enough_data() -> None:
    # 100 recipients paying at launch, 10 churned; holdout 50, 10 churned
    e = churn_effect(recipients=100, recipients_churned=10, holdout=50, holdout_churned=10, days=30)
    assert e.enough_data and e.complete
    assert e.recipients_rate == 0.1 and e.holdout_rate == 0.2
    assert e.difference == pytest.approx(-0.1)
    l1, u1 = _wilson_by_hand(10, 100)
    l2, u2 = _wilson_by_hand(10, 50)
    assert e.ci_low == pytest.approx(-0.1 - math.sqrt((0.1 - l1) ** 2 + (u2 - 0.2) ** 2))
    assert e.ci_high == pytest.approx(-0.1 + math.sqrt((u1 - 0.1) ** 2 + (0.2 - l2) ** 2))
    assert e.ci_low < e.difference < e.ci_high
    assert 0 < e.p_value < 1
    assert "no difference shown" in e.note  # the interval includes 0 here


def test_fisher_p_value_by_hand() -> None:
    # 2x2 table [[30, 0], [20, 10]]: hypergeometric, P(X=30) = C(50,30) C(10,0) / C(60,30)
    e = churn_effect(recipients=30, recipients_churned=30, holdout=30, holdout_churned=20, days=30)
    p30 = math.comb(50, 30) * math.comb(10, 0) / math.comb(60, 30)
    # two-sided: both tails as extreme; the table is symmetric (X=20 has the same probability)
    p20 = math.comb(50, 20) * math.comb(10, 10) / math.comb(60, 30)
    assert e.p_value == pytest.approx(p30 + p20, rel=1e-9)
    assert e.ci_low > 0 and "churned more" in e.note


def test_not_enough_data() -> None:
    e = churn_effect(recipients=200, recipients_churned=20, holdout=4, holdout_churned=1, days=30)
    assert not e.enough_data
    assert e.difference is None and e.ci_low is None and e.p_value is None
    assert e.note == (
        "not enough data: the holdout group has 4 paying customers at launch; "
        "need at least 30 per group"
    )
    assert e.holdout_rate == 0.25
    empty = churn_effect(recipients=0, recipients_churned=0, holdout=0, holdout_churned=0, days=7)
    assert not empty.enough_data and empty.recipients_rate is None


def test_interim_note() -> None:
    e = churn_effect(
        recipients=40,
        recipients_churned=2,
        holdout=40,
        holdout_churned=2,
        days=30,
        complete=False,
    )
    assert e.difference == 0 and "not ended yet" in e.note


def test_bad_counts() -> None:
    with pytest.raises(ValueError, match="holdout: 5 churned of 4"):
        churn_effect(recipients=40, recipients_churned=2, holdout=4, holdout_churned=5, days=30)
