"""What a SaaS customer shows each month: payments, tickets, surveys, and the churn decision.

Functions of :class:`keepwell.demo.saas.SaasChunk` and its :class:`~keepwell.demo.saas.Month`;
they append records to the chunk's ledgers and set its scheduled changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from keepwell.demo import vocab
from keepwell.demo.clock import DAY, add_months
from keepwell.demo.simkit import lognormal, sigmoid
from keepwell.demo.writers import NEVER

if TYPE_CHECKING:
    from keepwell.demo.saas import Month, SaasChunk

# Customer states.
NEW, TRIAL, PAYING, CHURNED, LOST = 0, 1, 2, 3, 4

CAUSES = (
    "usage_decline",
    "payment_failure",
    "detractor",
    "low_adoption",
    "crisis",
    "support",
    "random",
    "trial_expired",
)
"""Why a customer churned (truth.csv); the first six are terms of the hazard."""
USAGE, PAYMENT, DETRACTOR, ADOPTION, CRISIS, SUPPORT, RANDOM, TRIAL_EXPIRED = range(8)

DUNNING_REASON = "payment_failed"
"""Cancel reason of a subscription cancelled because its payment failed for good."""
REASONS = tuple(
    dict.fromkeys([DUNNING_REASON, *(r for c in CAUSES for r in vocab.CANCEL_REASONS[c])])
)
"""Every cancel reason a subscription row can carry."""
_REASON_COUNTS = np.array([len(vocab.CANCEL_REASONS[c]) for c in CAUSES])
_REASON_OPTIONS = np.array(
    [
        [REASONS.index(r) for r in vocab.CANCEL_REASONS[c]]
        + [0] * (int(_REASON_COUNTS.max()) - len(vocab.CANCEL_REASONS[c]))
        for c in CAUSES
    ]
)

INVOICE_STATUS = ("open", "paid", "overdue", "failed")
TICKET_PRIORITY = ("low", "normal", "high", "urgent")
TICKET_STATUS = ("open", "pending", "closed")
TICKET_SUBJECTS = vocab.TICKET_SUBJECTS + vocab.URGENT_SUBJECTS
SURVEY_KINDS = ("nps", "csat", "open")
SURVEY_NAMES = ("Relationship NPS", "Support CSAT")
_NPS_GROUPS = ("promoter", "passive", "detractor")
SURVEY_TEXTS = tuple(t for g in _NPS_GROUPS for t in vocab.NPS_COMMENTS[g]) + vocab.OPEN_ANSWERS
"""Survey comments (NPS comments by group, then open answers)."""
_COMMENT_COUNTS = np.array([len(vocab.NPS_COMMENTS[g]) for g in _NPS_GROUPS])
_COMMENT_BASE = np.r_[0, np.cumsum(_COMMENT_COUNTS)[:-1]]
_OPEN_BASE = int(_COMMENT_COUNTS.sum())

DUNNING_DAYS = 21
RETRY_DAYS = np.array([0, 3, 7, 14])
"""Days after issue of the 1st..4th charge attempt."""


def cancel_reasons(
    rng: np.random.Generator, causes: np.ndarray, dunning: np.ndarray | None = None
) -> np.ndarray:
    """A cancel reason (index into REASONS) drawn for each churn cause; ``payment_failed``
    where ``dunning`` (the subscription was cancelled by the payment provider)."""
    counts = _REASON_COUNTS[causes]
    pick = (rng.random(len(causes)) * counts).astype(np.int64)
    reasons = _REASON_OPTIONS[causes, pick]
    return reasons if dunning is None else np.where(dunning, 0, reasons)


def bill(c: SaasChunk, billed: np.ndarray, issue: np.ndarray, m: Month) -> np.ndarray:
    """Issue one invoice per billed customer and play out its payment.

    Card payers are charged at issue; a failed charge (chance
    sigmoid(-3.55 - 0.6 h + 0.3 starter + 0.4 crisis)) is retried after 3, 7 and 14 days and
    recovers with chance sigmoid(0.9 + 0.8 h); otherwise the subscription is cancelled when
    dunning ends (21 days) with chance 0.75, or the customer pays late by hand. Bank-transfer
    payers (annual plans, half of business/enterprise) have 30/14 days and are sometimes late.
    Sets ``m.failed``; returns the dunning cancellation instant per billed customer (``NEVER``
    when none).
    """
    rng, end = c.rng, c.window.end
    k = len(billed)
    plan, yearly, h = c.plan[billed], c.annual[billed], c.h_lag[billed]
    price = np.array(vocab.PLAN_PRICE_MINOR)[plan]
    annual_price = np.round(price * 12 * (1 - vocab.ANNUAL_DISCOUNT)).astype(np.int64)
    amount = np.where(yearly, annual_price, price)
    transfer = yearly | ((plan >= 2) & (rng.random(k) < 0.5))
    due = issue + np.where(transfer, np.where(yearly, 30, 14), 0) * DAY

    p_fail = sigmoid(-3.55 - 0.6 * h + 0.3 * (plan == 0) + 0.4 * m.crisis_on[billed])
    failed = ~transfer & (rng.random(k) < p_fail)
    recovered = failed & (rng.random(k) < sigmoid(0.9 + 0.8 * h))
    final = failed & ~recovered
    cancels = final & (rng.random(k) < 0.75)
    success_attempt = rng.integers(2, 5, k)
    paid = issue + rng.integers(30, 900, k)  # card charged within minutes
    retry_paid = issue + RETRY_DAYS[success_attempt - 1] * DAY + rng.integers(0, 3_600, k)
    paid = np.where(recovered, retry_paid, paid)
    late_days = lognormal(rng, 8.0, 0.6, k) * np.exp(-0.4 * np.minimum(h, 0))
    paid = np.where(transfer, issue + (late_days * DAY).astype(np.int64), paid)
    paid = np.where(final & ~cancels, issue + rng.integers(21, 36, k) * DAY, paid)
    paid = np.where(cancels, NEVER, paid)
    attempts = np.where(transfer, 0, np.where(recovered, success_attempt, np.where(final, 4, 1)))
    made = ((issue[:, None] + RETRY_DAYS[None, :] * DAY) < end).sum(axis=1)
    attempts = np.where(failed, np.minimum(attempts, made), attempts)

    settled = paid < end
    status = np.where(settled, 1, np.where(due < end, 2, 0))  # paid / overdue / open
    status = np.where(cancels & (issue + RETRY_DAYS[-1] * DAY < end), 3, status)  # failed
    c.invoices.add(
        customer=billed,
        seq=c.row_seq[billed],
        issue=issue,
        due=due,
        paid=np.where(settled, paid, NEVER),
        status=status,
        attempts=attempts,
        reason=np.where(failed, rng.integers(0, len(vocab.FAILURE_REASONS), k), -1),
        amount=amount,
    )
    m.failed[billed] = failed
    return np.where(cancels, issue + DUNNING_DAYS * DAY, NEVER)


def support(c: SaasChunk, idx: np.ndarray, m: Month) -> np.ndarray:
    """Tickets of the month and CSAT answers; returns the bad-experience flag per customer.

    Tickets ~ Poisson(0.05 seats^0.35 e^(-0.7 h) + 0.4 failed_payment) a month; urgency rises
    and resolution slows at low health. A ticket open > 4 days (urgent: > 1 day) is a bad
    experience; 30 % of closed tickets get a CSAT answer, lower after a bad one.
    """
    rng, end = c.rng, c.window.end
    lo, hi, h = m.lo[idx], m.hi[idx], c.h_lag[idx]
    rate = 0.05 * c.seats[idx] ** 0.35 * np.exp(-0.7 * h) + 0.4 * m.failed[idx]
    count = np.minimum(rng.poisson(rate * (hi - lo) / (30 * DAY)), 8)
    row = np.repeat(np.arange(len(idx)), count)
    bad = np.zeros(c.n, bool)
    k = len(row)
    if k == 0:
        return bad
    hr = h[row]
    opened = lo[row] + (rng.random(k) * (hi[row] - lo[row])).astype(np.int64)
    p_urgent = sigmoid(-3.6 - 1.0 * hr)
    p_high = sigmoid(-1.9 - 0.6 * hr)
    u = rng.random(k)
    priority = np.select(
        [u < p_urgent, u < p_urgent + p_high, u < p_urgent + p_high + 0.25], [3, 2, 0], 1
    )
    hours = lognormal(rng, 20.0, 1.0, k) * np.exp(-0.3 * hr - 0.8 * (priority == 3))
    closed = opened + (hours * 3_600).astype(np.int64)
    is_bad = (hours > 96) | ((priority == 3) & (hours > 24))
    bad[idx[row[is_bad]]] = True
    subject = np.where(
        priority == 3,
        len(vocab.TICKET_SUBJECTS) + rng.integers(0, len(vocab.URGENT_SUBJECTS), k),
        rng.integers(0, len(vocab.TICKET_SUBJECTS), k),
    )
    c.tickets.add(
        customer=idx[row],
        opened=opened,
        closed=np.where(closed < end, closed, NEVER),
        priority=priority,
        status=np.where(closed < end, 2, np.where(end - opened > 2 * DAY, 1, 0)),
        subject=subject,
    )
    answered_at = closed + rng.exponential(8 * 3_600, k).astype(np.int64)
    score = np.clip(np.round(4.2 - 1.4 * is_bad + 0.4 * hr + 0.7 * rng.normal(size=k)), 1, 5)
    a = np.flatnonzero((closed < end) & (rng.random(k) < 0.3) & (answered_at < end))
    c.surveys.add(
        customer=idx[row[a]],
        at=answered_at[a],
        kind=np.full(len(a), 1),
        score=score[a].astype(np.int64),
        comment=np.full(len(a), -1),
        survey=np.full(len(a), 1),
    )
    return bad


def nps(c: SaasChunk, idx: np.ndarray, m: Month) -> None:
    """Relationship NPS in tenure months 3, 9, 15, ... (40 % answer, 35 % with a comment).

    score = clip(round(7.8 + 1.9 h[t-1] + N(0, 1.4)), 0, 10); 8 % of respondents also leave
    an open answer.
    """
    rng = c.rng
    k = len(idx)
    lo, hi = m.lo[idx], m.hi[idx]
    tenure = m.t - c.signup_period[idx]
    answers = (tenure >= 3) & (tenure % 6 == 3) & (hi - lo > DAY) & (rng.random(k) < 0.4)
    noise = 1.4 * rng.normal(size=k)
    scores = np.clip(np.round(7.8 + 1.9 * c.h_lag[idx] + noise), 0, 10).astype(np.int64)
    at = lo + (rng.random(k) * (hi - lo)).astype(np.int64)
    group = np.where(scores >= 9, 0, np.where(scores >= 7, 1, 2))
    pick = (rng.random(k) * _COMMENT_COUNTS[group]).astype(np.int64)
    comment = np.where(rng.random(k) < 0.35, _COMMENT_BASE[group] + pick, -1)
    a = np.flatnonzero(answers)
    c.surveys.add(
        customer=idx[a],
        at=at[a],
        kind=np.zeros(len(a), np.int64),
        score=scores[a],
        comment=comment[a],
        survey=np.zeros(len(a), np.int64),
    )
    extra = a[rng.random(len(a)) < 0.08]
    c.surveys.add(
        customer=idx[extra],
        at=np.minimum(at[extra] + 60, hi[extra] - 1),
        kind=np.full(len(extra), 2),
        score=np.full(len(extra), -1),
        comment=_OPEN_BASE + rng.integers(0, len(vocab.OPEN_ANSWERS), len(extra)),
        survey=np.zeros(len(extra), np.int64),
    )
    c.last_nps[idx[a]] = scores[a]
    c.last_nps_period[idx[a]] = m.t


def decide(
    c: SaasChunk, m: Month, *, rate: np.ndarray, events: np.ndarray, breadth: np.ndarray
) -> None:
    """Churn decisions and plan changes at the end of month t, effective at the next anniversary.

    Hazard on observables (one term per cause; the largest names the cause, ``random`` when
    none reaches 0.5)::

        logit p = -5.3 + plan (+0.45 starter .. -0.95 enterprise) - 0.5 annual
                  + 1.6 min(decline, 2.5) + 1.0 no_use            (usage_decline)
                  + 0.9 failed_payment                            (payment_failure)
                  + 1.0 detractor - 0.4 promoter (last 6 months)  (detractor)
                  + 0.8 [breadth <= 2]                            (low_adoption)
                  + 0.9 crisis                                    (crisis)
                  + 0.6 bad_support                               (support)
                  + N(0, 0.6)

    with decline = max(0, -log((rate_t + 0.05) / (rate_before + 0.05))), rate = events per
    alive day and rate_before its smoothed value over the earlier months. Plan changes:
    up with sigmoid(-4.9 + 0.9 h + 1.0 thriving), down with sigmoid(-5.0 - 0.9 h + 1.4 crisis).
    """
    rng, w, t = c.rng, c.window, m.t
    cand = np.flatnonzero(
        (c.state == PAYING)
        & (c.pend_at == NEVER)
        & (c.change_at == NEVER)
        & (c.paying_since < t)
        & (c.churn_period < t)
        & ~np.isnan(rate)
    )
    k = len(cand)
    if k == 0:
        return
    decline = np.log((rate[cand] + 0.05) / (c.rate_prev[cand] + 0.05))
    decline = np.where(np.isnan(decline), 0.0, np.maximum(-decline, 0.0))
    recent = (t - c.last_nps_period[cand]) <= 6
    score = c.last_nps[cand]
    terms = np.stack(
        [
            1.6 * np.minimum(decline, 2.5) + 1.0 * (events[cand] == 0),
            0.9 * m.failed[cand],
            1.0 * (recent & (score >= 0) & (score <= 6)) - 0.4 * (recent & (score >= 9)),
            0.8 * (breadth[cand] <= 2),
            0.9 * m.crisis_on[cand],
            0.6 * m.bad_support[cand],
        ],
        axis=1,
    )
    plan, annual = c.plan[cand], c.annual[cand]
    base = -5.3 + np.array([0.45, 0.0, -0.45, -0.95])[plan] - 0.5 * annual
    leaves = rng.random(k) < sigmoid(base + terms.sum(axis=1) + 0.6 * rng.normal(size=k))
    cause = np.where(terms.max(axis=1) >= 0.5, terms.argmax(axis=1), RANDOM)

    months_ahead = t + 1 - c.anchor_period[cand]
    anniversary = np.maximum(add_months(c.anchor[cand], months_ahead), w.bounds[t + 1])
    inside = anniversary < w.end
    go = leaves & inside
    c.pend_at[cand[go]] = anniversary[go]
    c.pend_cause[cand[go]] = cause[go]

    h = c.h_lag[cand]
    p_up = sigmoid(-4.9 + 0.9 * h + 1.0 * m.thriving_on[cand]) * (plan < 3)
    p_down = sigmoid(-5.0 - 0.9 * h + 1.4 * m.crisis_on[cand]) * (plan > 0)
    u = rng.random(k)
    step = np.where(u < p_up, 1, np.where(u < p_up + p_down, -1, 0))
    moves = ~leaves & (step != 0) & inside
    c.change_at[cand[moves]] = anniversary[moves]
    c.change[cand[moves]] = step[moves]
