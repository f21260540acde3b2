"""Did the campaign keep customers? Churn of recipients vs the holdout group, with its error.

For each group, of the customers who were *paying* at launch (PRODUCT.md section 1: a
subscription in force, not a trial, MRR > 0), churn = share no longer paying N days after
launch. Effect = churn(recipients) - churn(holdout); negative means the campaign kept
customers. Its 95% confidence interval is Newcombe's hybrid score interval (method 10 in
Newcombe 1998, "Interval estimation for the difference between independent proportions"),
built from the two Wilson score intervals that :func:`scipy.stats.binomtest` computes; the
p-value is Fisher's exact test (:func:`scipy.stats.fisher_exact`, two-sided), valid for small
groups too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MIN_GROUP", "RetentionEffect", "churn_effect", "newcombe_interval", "wilson_interval"]

MIN_GROUP = 30
"""Fewest paying customers per group before an effect is estimated."""


def wilson_interval(successes: int, total: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``successes / total`` (via scipy).

    >>> [round(x, 4) for x in wilson_interval(56, 70)]
    [0.6918, 0.877]
    """
    from scipy.stats import binomtest  # imported on use: scipy is slow to import

    ci = binomtest(successes, total).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def newcombe_interval(
    successes_a: int, total_a: int, successes_b: int, total_b: int, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(p_a - p_b, low, high): Newcombe's hybrid score interval for a difference of proportions.

    low = d - sqrt((p_a - l_a)^2 + (u_b - p_b)^2), high = d + sqrt((u_a - p_a)^2 + (p_b - l_b)^2)
    with (l, u) the Wilson intervals. Newcombe's example 56/70 vs 48/80:

    >>> [round(x, 4) for x in newcombe_interval(56, 70, 48, 80)]
    [0.2, 0.0524, 0.3339]
    """
    p_a, p_b = successes_a / total_a, successes_b / total_b
    l_a, u_a = wilson_interval(successes_a, total_a, confidence=confidence)
    l_b, u_b = wilson_interval(successes_b, total_b, confidence=confidence)
    diff = p_a - p_b
    low = diff - math.sqrt((p_a - l_a) ** 2 + (u_b - p_b) ** 2)
    high = diff + math.sqrt((u_a - p_a) ** 2 + (p_b - l_b) ** 2)
    return diff, low, high


@dataclass(frozen=True)
class RetentionEffect:
    """Churn of recipients vs holdout within ``days`` after launch.

    ``difference`` = recipients' churn rate - holdout's (negative = fewer churned with the
    e-mail); ``ci_low``/``ci_high`` its 95% interval and ``p_value`` Fisher's exact test, all
    None when ``enough_data`` is False (``note`` says why).
    """

    days: int
    recipients: int
    recipients_churned: int
    holdout: int
    holdout_churned: int
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    enough_data: bool
    complete: bool
    note: str

    @property
    def recipients_rate(self) -> float | None:
        return self.recipients_churned / self.recipients if self.recipients else None

    @property
    def holdout_rate(self) -> float | None:
        return self.holdout_churned / self.holdout if self.holdout else None


def churn_effect(
    *,
    recipients: int,
    recipients_churned: int,
    holdout: int,
    holdout_churned: int,
    days: int,
    complete: bool = True,
    min_group: int = MIN_GROUP,
) -> RetentionEffect:
    """Compare churn of two groups (paying at launch -> churned within ``days``).

    >>> e = churn_effect(recipients=70, recipients_churned=56, holdout=80, holdout_churned=48,
    ...                  days=30)
    >>> round(e.difference, 3), round(e.ci_low, 4), round(e.ci_high, 4), e.enough_data
    (0.2, 0.0524, 0.3339, True)
    """
    for name, churned, total in (
        ("recipients", recipients_churned, recipients),
        ("holdout", holdout_churned, holdout),
    ):
        if total < 0 or not 0 <= churned <= total:
            raise ValueError(f"{name}: {churned} churned of {total}")
    small = [
        f"{name} has {n} paying customer{'s' if n != 1 else ''} at launch"
        for name, n in (("the recipient group", recipients), ("the holdout group", holdout))
        if n < min_group
    ]
    base = dict(
        days=days,
        recipients=recipients,
        recipients_churned=recipients_churned,
        holdout=holdout,
        holdout_churned=holdout_churned,
        complete=complete,
    )
    if small:
        note = f"not enough data: {' and '.join(small)}; need at least {min_group} per group"
        return RetentionEffect(
            **base,
            difference=None,
            ci_low=None,
            ci_high=None,
            p_value=None,
            enough_data=False,
            note=note,
        )
    diff, low, high = newcombe_interval(recipients_churned, recipients, holdout_churned, holdout)
    table = [
        [recipients_churned, recipients - recipients_churned],
        [holdout_churned, holdout - holdout_churned],
    ]
    from scipy.stats import fisher_exact

    p_value = float(fisher_exact(table, alternative="two-sided").pvalue)
    if low > 0:
        verdict = "recipients churned more than the holdout"
    elif high < 0:
        verdict = "recipients churned less than the holdout"
    else:
        verdict = "no difference shown (the interval includes 0)"
    if not complete:
        verdict += f"; the {days}-day window has not ended yet (interim figures)"
    return RetentionEffect(
        **base,
        difference=diff,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        enough_data=True,
        note=verdict,
    )
