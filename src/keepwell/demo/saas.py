"""The SaaS demo business: one chunk of customers simulated month by month, vectorised.

Model (customer i, calendar month t; every draw comes from the chunk's seeded generator):

* Latent health ``h[i,t]``: an AR(1) walk around the persona's mean ``mu_i``,
  ``h[t+1] = mu_i(t) + 0.85 (h[t] - mu_i(t)) + 0.3 eps + shocks``. Shocks: the crisis
  (travel, hospitality: -0.6 when it starts and ``mu`` lowered by 0.9 from then on), thriving
  industries (healthcare, delivery: ``mu`` + 0.35 over the same months), failed payments
  (-0.25), bad support experiences (-0.35) and a champion leaving (-1.2, 1.5 % a month).
* Observables follow health with a one-month lag: active days ~ Binomial(alive days, p_day),
  ``logit p_day = logit(habit base) + 1.1 h[t-1]``; events per active day grow with seats and
  ``e^(0.45 h[t-1])``; feature breadth, NPS, tickets and payment failures
  (:mod:`keepwell.demo.saas_signals`).
* A monthly churn hazard on those *observables* plus noise (``saas_signals.decide``); who
  decides to leave cancels at the next billing anniversary and uses the product far less
  until then. Failed payments that exhaust their retries cancel after 21 days of dunning.
* Plan changes at the next anniversary, win-backs of churned customers, 14-day trials.

The outputs are assembled by :mod:`keepwell.demo.saas_output`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from keepwell.demo import saas_signals as signals
from keepwell.demo import vocab
from keepwell.demo.clock import DAY, Window, add_months
from keepwell.demo.saas_signals import CHURNED, LOST, NEW, PAYING, TRIAL
from keepwell.demo.simkit import Ledger, choice, choice_rows, logit, sigmoid
from keepwell.demo.writers import NEVER

# Subscription row states (index into SUBSCRIPTION_STATUS).
ROW_TRIALING, ROW_ACTIVE, ROW_PAST_DUE, ROW_CANCELED = 0, 1, 2, 3
SUBSCRIPTION_STATUS = ("trialing", "active", "past_due", "canceled")

SIGNUP_GROWTH = math.log(4.0)
"""Sign-ups grow exponentially: the last month brings ~4x the first month's."""
TRIAL_DAYS = 14
EVENTS_PER_ACTIVE_DAY = 1.05
"""Scale of events per active day; calibrated so ``events_per_customer_day=1`` gives ~1."""
FEATURES = len(vocab.SAAS_EVENTS) - 1
"""Feature event types (every type but login)."""


@dataclass
class Month:
    """What happens to the chunk's customers in calendar month ``t`` = [b0, b1)."""

    t: int
    b0: int
    b1: int
    lo: np.ndarray  # alive from (per customer)
    hi: np.ndarray  # alive until (exclusive)
    ended: np.ndarray  # churned or lost a trial this month
    leaving: np.ndarray  # decided to leave: little usage until the cancellation
    crisis_on: np.ndarray
    thriving_on: np.ndarray
    mu: np.ndarray
    failed: np.ndarray  # a payment failed this month
    bad_support: np.ndarray  # a ticket went badly this month


class SaasChunk:
    """Customers ``first .. first + n - 1`` of ``total``: who they are and what they do."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        first: int,
        n: int,
        total: int,
        window: Window,
        events_per_customer_day: float,
    ) -> None:
        self.rng = rng
        self.first = first
        self.n = n
        self.window = window
        self.scale = events_per_customer_day
        self.subscriptions = Ledger()
        self.invoices = Ledger()
        self.tickets = Ledger()
        self.surveys = Ledger()
        self._draw_customers(total)

    # --- who the customers are ------------------------------------------------------------------

    def _draw_customers(self, total: int) -> None:
        rng, n, w = self.rng, self.n, self.window
        q = (self.first + np.arange(n) + rng.random(n)) / total  # stratified: ids follow signup
        x = np.log1p(q * math.expm1(SIGNUP_GROWTH)) / SIGNUP_GROWTH
        self.signup = w.start + (x * (w.end - w.start - 3_600)).astype(np.int64)
        self.signup_period = np.searchsorted(w.bounds, self.signup, side="right") - 1

        self.persona = choice(rng, [share for _, share, _ in vocab.PERSONAS], n)
        self.mu = np.array([m for _, _, m in vocab.PERSONAS])[self.persona]
        self.mu = self.mu + rng.normal(0.0, 0.25, n)
        self.habit = choice_rows(rng, vocab.HABIT_BY_PERSONA, self.persona)
        self.industry = choice(rng, [weight for _, weight, _ in vocab.INDUSTRIES], n)
        industries = [name for name, _, _ in vocab.INDUSTRIES]
        self.crisis = np.isin(self.industry, [industries.index(i) for i in vocab.CRISIS_INDUSTRIES])
        self.thriving = np.isin(
            self.industry, [industries.index(i) for i in vocab.THRIVING_INDUSTRIES]
        )
        self.place = choice(rng, [c[4] for c in vocab.COUNTRIES], n)
        zone_of_place = np.array([w.zones.zones.index(c[1]) for c in vocab.COUNTRIES])
        self.zone = zone_of_place[self.place]

        plan = choice(rng, vocab.PLAN_SHARES, n)
        self.plan0 = np.where(
            (self.persona == 0) & (plan < 3) & (rng.random(n) < 0.15), plan + 1, plan
        )
        self.annual0 = rng.random(n) < np.array([0.12, 0.2, 0.35, 0.6])[self.plan0]
        median, sigma = np.array(vocab.PLAN_SEATS).T
        seats = median[self.plan0] * np.exp(sigma[self.plan0] * rng.normal(size=n))
        self.seats0 = np.clip(np.round(seats), 1, 999).astype(np.int64)
        self.trial = rng.random(n) < np.array([0.45, 0.45, 0.3, 0.08])[self.plan0]
        self.channel = choice(rng, vocab.ACQUISITION_SHARES, n)
        self.beta = rng.random(n) < 0.06
        unassigned = rng.random(n) < np.array([0.45, 0.2, 0.0, 0.0])[self.plan0]
        self.owner = np.where(unassigned, -1, rng.integers(0, len(vocab.OWNERS), n))
        self.health0 = self.mu + rng.normal(0.0, 0.5, n)

        breadth = 1.5 + 6.0 * sigmoid(self.mu + rng.normal(0.0, 0.8, n)) - 0.6 * self.habit
        self.breadth_base = np.clip(breadth, 1.0, FEATURES)
        popularity = np.log(np.array(vocab.SAAS_EVENT_POPULARITY[1:]))
        keys = popularity[None, :] + rng.gumbel(size=(n, FEATURES))
        self.feature_order = (np.argsort(-keys, axis=1) + 1).astype(np.int8)  # event indexes
        self.per_day = (
            EVENTS_PER_ACTIVE_DAY
            * self.seats0**0.3
            * np.array([1.3, 1.0, 0.8, 0.7])[self.habit]
            * np.exp(rng.normal(0.0, 0.3, n))
        )

    # --- the month loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Simulate every month of the window (see the module docstring)."""
        n, periods = self.n, self.window.periods
        self.days = np.zeros((n, periods), np.int32)
        self.events = np.zeros((n, periods), np.int64)
        self.lo = np.zeros((n, periods), np.int64)
        self.hi = np.zeros((n, periods), np.int64)
        self.breadth = np.ones((n, periods), np.int8)
        self.seats_t = np.ones((n, periods), np.int32)

        self.state = np.full(n, NEW, np.int8)
        self.h = self.health0.copy()
        self.h_lag = self.h.copy()
        self.health_end = self.h.copy()
        self.plan = self.plan0.copy()
        self.annual = self.annual0.copy()
        self.seats = self.seats0.copy()
        self.anchor = np.zeros(n, np.int64)  # billing anniversaries follow this instant
        self.anchor_period = np.zeros(n, np.int64)
        self.row_start = np.zeros(n, np.int64)
        self.row_seq = np.zeros(n, np.int64)
        self.row_trial = np.zeros(n, bool)
        self.trial_end = self.signup + TRIAL_DAYS * DAY
        self.paying_since = np.full(n, periods, np.int64)
        self.alive_from = self.signup.copy()
        self.pend_at = np.full(n, NEVER, np.int64)  # scheduled cancellation
        self.pend_cause = np.full(n, -1, np.int64)
        self.pend_dunning = np.zeros(n, bool)  # cancelled by failed payment, not by choice
        self.change_at = np.full(n, NEVER, np.int64)  # scheduled plan change
        self.change = np.zeros(n, np.int64)
        self.react_at = np.full(n, NEVER, np.int64)  # scheduled win-back
        self.rate_prev = np.full(n, np.nan)  # smoothed usage rate of the months before
        self.last_nps = np.full(n, -1, np.int64)
        self.last_nps_period = np.full(n, -99, np.int64)
        self.churn_count = np.zeros(n, np.int64)
        self.first_churn_at = np.full(n, NEVER, np.int64)
        self.first_cause = np.full(n, -1, np.int64)
        self.last_churn_at = np.full(n, NEVER, np.int64)
        self.last_cause = np.full(n, -1, np.int64)
        self.churn_period = np.full(n, -99, np.int64)
        self.reactivations = np.zeros(n, np.int64)

        for t in range(periods):
            self._month(t)

        running = np.flatnonzero((self.state == TRIAL) | (self.state == PAYING))
        dunning = self.pend_dunning[running]
        status = np.where(
            self.state[running] == TRIAL, ROW_TRIALING, np.where(dunning, ROW_PAST_DUE, ROW_ACTIVE)
        )
        for code in (ROW_TRIALING, ROW_ACTIVE, ROW_PAST_DUE):
            chosen = running[status == code]
            self._close_rows(chosen, np.full(len(chosen), NEVER), code)

    def _month(self, t: int) -> None:
        rng, n, w = self.rng, self.n, self.window
        b0, b1 = int(w.bounds[t]), int(w.bounds[t + 1])
        crisis_on = self.crisis & (t >= w.crisis_period)
        thriving_on = self.thriving & (t >= w.crisis_period)
        m = Month(
            t=t,
            b0=b0,
            b1=min(b1, w.end),
            lo=np.zeros(n, np.int64),
            hi=np.full(n, b1, np.int64),
            ended=np.zeros(n, bool),
            leaving=np.zeros(n, bool),
            crisis_on=crisis_on,
            thriving_on=thriving_on,
            mu=self.mu - 0.9 * crisis_on + 0.35 * thriving_on,
            failed=np.zeros(n, bool),
            bad_support=np.zeros(n, bool),
        )
        self._sign_up(m)
        self._win_back(m)
        m.lo = np.maximum(b0, self.alive_from)
        self._end_trials(m)
        self._cancel_due(m)
        self._change_plans(m)
        self._bill(m)
        idx, rate, events, breadth = self._use(m)
        m.bad_support = signals.support(self, idx, m)
        signals.nps(self, idx, m)
        if t < w.periods - 1:
            signals.decide(self, m, rate=rate, events=events, breadth=breadth)
            self._plan_win_backs(m)
        self.rate_prev = np.where(
            np.isnan(rate),
            self.rate_prev,
            np.where(np.isnan(self.rate_prev), rate, 0.5 * rate + 0.5 * self.rate_prev),
        )
        live = (self.state == TRIAL) | (self.state == PAYING)
        self.health_end[live] = self.h[live]
        self.h_lag = self.h.copy()
        shock = (
            -0.25 * m.failed
            - 0.35 * m.bad_support
            - 0.6 * (self.crisis & (t + 1 == w.crisis_period))
            - 1.2 * (rng.random(n) < 0.015)
        )
        moved = m.mu + 0.85 * (self.h - m.mu) + 0.3 * rng.normal(size=n) + shock
        self.h = np.where(self.state == NEW, self.h, moved)  # health starts at sign-up

    # --- subscription rows ----------------------------------------------------------------------

    def _open_rows(self, idx: np.ndarray, at: np.ndarray, *, trial: bool = False) -> None:
        self.row_seq[idx] += 1
        self.row_start[idx] = at
        self.row_trial[idx] = trial
        if not trial:
            self.anchor[idx] = at

    def _close_rows(
        self, idx: np.ndarray, at: np.ndarray, status: int, reason: np.ndarray | None = None
    ) -> None:
        self.subscriptions.add(
            customer=idx,
            seq=self.row_seq[idx],
            plan=self.plan[idx],
            annual=self.annual[idx] & ~self.row_trial[idx],
            trial=self.row_trial[idx],
            start=self.row_start[idx],
            end=at,
            status=np.full(len(idx), status),
            reason=np.full(len(idx), -1) if reason is None else reason,
        )

    def _record_churn(self, idx: np.ndarray, at: np.ndarray, cause: np.ndarray, m: Month) -> None:
        self.churn_count[idx] += 1
        is_first = self.first_churn_at[idx] == NEVER
        self.first_churn_at[idx[is_first]] = at[is_first]
        self.first_cause[idx[is_first]] = cause[is_first]
        self.last_churn_at[idx] = at
        self.last_cause[idx] = cause
        self.churn_period[idx] = m.t
        m.hi[idx] = at
        m.ended[idx] = True

    # --- monthly steps --------------------------------------------------------------------------

    def _sign_up(self, m: Month) -> None:
        new = np.flatnonzero(self.signup_period == m.t)
        trial, paid = new[self.trial[new]], new[~self.trial[new]]
        self.state[trial] = TRIAL
        self._open_rows(trial, self.signup[trial], trial=True)
        self.state[paid] = PAYING
        self._open_rows(paid, self.signup[paid])
        self.anchor_period[paid] = m.t
        self.paying_since[paid] = m.t

    def _win_back(self, m: Month) -> None:
        back = np.flatnonzero((self.state == CHURNED) & (self.react_at < m.b1))
        if not len(back):
            return
        rng = self.rng
        self.state[back] = PAYING
        self.plan[back] = np.maximum(self.plan[back] - (rng.random(len(back)) < 0.3), 0)
        self.annual[back] = False
        self._open_rows(back, self.react_at[back])
        self.anchor_period[back] = m.t
        self.alive_from[back] = self.react_at[back]
        self.h[back] = m.mu[back] + 0.3 + rng.normal(0.0, 0.4, len(back))
        self.h_lag[back] = self.h[back]
        self.rate_prev[back] = np.nan
        self.reactivations[back] += 1
        self.react_at[back] = NEVER

    def _end_trials(self, m: Month) -> None:
        """Trials ending this month convert with chance sigmoid(1.5 + 1.2 h) or are lost."""
        ending = np.flatnonzero((self.state == TRIAL) & (self.trial_end < m.b1))
        if not len(ending):
            return
        converts = self.rng.random(len(ending)) < sigmoid(1.5 + 1.2 * self.h_lag[ending])
        done, lost = ending[converts], ending[~converts]
        self._close_rows(done, self.trial_end[done], ROW_TRIALING)
        self.state[done] = PAYING
        self._open_rows(done, self.trial_end[done])
        self.anchor_period[done] = m.t
        self.paying_since[done] = m.t
        causes = np.full(len(lost), signals.TRIAL_EXPIRED)
        reasons = signals.cancel_reasons(self.rng, causes)
        self._close_rows(lost, self.trial_end[lost], ROW_CANCELED, reasons)
        self.state[lost] = LOST
        self._record_churn(lost, self.trial_end[lost], causes, m)

    def _cancel_due(self, m: Month) -> None:
        """Cancellations that fall due this month end the row and the customer."""
        idx = np.flatnonzero((self.state == PAYING) & (self.pend_at < m.b1))
        causes = self.pend_cause[idx]
        at = self.pend_at[idx]
        reasons = signals.cancel_reasons(self.rng, causes, self.pend_dunning[idx])
        self._close_rows(idx, at, ROW_CANCELED, reasons)
        self.state[idx] = CHURNED
        self._record_churn(idx, at, causes, m)
        m.leaving[idx] = ~self.pend_dunning[idx]
        self.pend_at[idx] = NEVER
        self.pend_dunning[idx] = False
        self.change_at[idx] = NEVER

    def _change_plans(self, m: Month) -> None:
        """Scheduled up-/downgrades: end the row, start the next at the same instant."""
        idx = np.flatnonzero((self.state == PAYING) & (self.change_at < m.b1))
        if not len(idx):
            return
        rng, at = self.rng, self.change_at[idx]
        self._close_rows(idx, at, ROW_ACTIVE)
        up = self.change[idx] > 0
        factor = np.where(up, rng.uniform(1.2, 1.8, len(idx)), rng.uniform(0.5, 0.85, len(idx)))
        self.seats[idx] = np.clip(np.round(self.seats[idx] * factor), 1, 999).astype(np.int64)
        self.plan[idx] = np.clip(self.plan[idx] + self.change[idx], 0, 3)
        self._open_rows(idx, at)
        self.anchor_period[idx] = m.t
        self.change_at[idx] = NEVER

    def _bill(self, m: Month) -> None:
        """One invoice per billing period, issued at the anchor's anniversary this month."""
        payer = np.flatnonzero(self.state == PAYING)
        months_in = m.t - self.anchor_period[payer]
        issue = add_months(self.anchor[payer], months_in)
        due = (
            (issue >= self.row_start[payer])
            & (issue >= m.lo[payer])
            & (issue < m.hi[payer])
            & (issue < m.b1)
            & (~self.annual[payer] | (months_in % 12 == 0))
        )
        if not due.any():
            return
        billed = payer[due]
        dunning_end = signals.bill(self, billed, issue[due], m)
        cancels = dunning_end < NEVER
        self.pend_at[billed[cancels]] = dunning_end[cancels]
        self.pend_cause[billed[cancels]] = signals.PAYMENT
        self.pend_dunning[billed[cancels]] = True
        self.change_at[billed[cancels]] = NEVER
        self._cancel_due(m)

    def _use(self, m: Month) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Active days, events and feature breadth of the month, from last month's health.

        Returns the customers alive this month, and per customer of the chunk the usage rate
        (events per alive day; NaN when alive < 10 days), events and breadth.
        """
        rng, n = self.rng, self.n
        alive = ((self.state == TRIAL) | (self.state == PAYING) | m.ended) & (m.lo < m.hi)
        idx = np.flatnonzero(alive)
        h = self.h_lag[idx]
        span = (m.hi[idx] - m.lo[idx]) / DAY
        whole = np.ceil(span).astype(np.int64)
        p_day = sigmoid(logit(np.array(vocab.HABIT_DAY_PROB))[self.habit[idx]] + 1.1 * h)
        december = 0.85 if self.window.calendar_month(m.t) == 12 else 1.0
        p_day *= december * np.where(m.leaving[idx], 0.3, 1.0)
        per_day = self.per_day[idx] * np.exp(0.45 * h) * self.scale
        p_day *= np.minimum(per_day, 1.0)  # below one event a day: fewer active days
        per_day = np.maximum(per_day, 1.0)
        days = rng.binomial(whole, np.clip(p_day * span / np.maximum(whole, 1), 0.0, 1.0))
        events = days + rng.poisson(days * (per_day - 1.0))
        tenure = m.t - np.minimum(self.signup_period[idx], m.t)
        ramp = np.minimum(1.0, 0.45 + 0.2 * tenure)  # onboarding: features adopted over time
        breadth = np.round(self.breadth_base[idx] * ramp * np.exp(0.25 * h))
        breadth = np.clip(breadth, 1, FEATURES).astype(np.int8)

        t = m.t
        self.days[idx, t] = days
        self.events[idx, t] = events
        self.lo[idx, t] = m.lo[idx]
        self.hi[idx, t] = m.hi[idx]
        self.breadth[idx, t] = breadth
        self.seats_t[idx, t] = self.seats[idx]
        rate = np.full(n, np.nan)
        full = span >= 10
        rate[idx[full]] = events[full] / span[full]
        events_all = np.zeros(n, np.int64)
        events_all[idx] = events
        breadth_all = np.full(n, FEATURES, np.int64)
        breadth_all[idx] = breadth
        return idx, rate, events_all, breadth_all

    def _plan_win_backs(self, m: Month) -> None:
        """Churned customers come back next month with chance 3 % a month (8 % after a
        payment failure, halved in the crisis), during 18 months after leaving."""
        rng, w = self.rng, self.window
        gone = np.flatnonzero((self.state == CHURNED) & (self.react_at == NEVER))
        months_out = m.t - self.churn_period[gone]
        p_back = np.where(self.last_cause[gone] == signals.PAYMENT, 0.08, 0.03)
        p_back = np.where(m.crisis_on[gone], p_back * 0.5, p_back)
        p_back = np.where((months_out >= 1) & (months_out <= 18), p_back, 0.0)
        back = gone[rng.random(len(gone)) < p_back]
        b1 = int(w.bounds[m.t + 1])
        b2 = int(w.bounds[m.t + 2])
        self.react_at[back] = b1 + (rng.random(len(back)) * (b2 - b1)).astype(np.int64)
