"""Triggers: which customers a rule hits now, each with the identity of the occurrence.

A trigger returns :class:`Hit` objects. ``occurrence`` names the thing that happened (the
invoice, the score row, the renewal date, the membership change...), so the same occurrence
seen by a later run gives the same dedup key and does not fire again.

State triggers have no natural event; their occurrence is:

* ``no_activity``: the last active day (a new lapse after new activity is a new occurrence);
* ``usage_drop``: the 28-day block (days since 1970-01-01 // 28) of the snapshot: a drop
  that lasts fires once per 28 days at most.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.billing.models import (
    MONTHS_PER_PERIOD,
    BillingPeriod,
    Invoice,
    InvoiceStatus,
    Subscription,
    SubscriptionStatus,
)
from keepwell.config import Settings
from keepwell.health.models import HealthScore
from keepwell.money import format_money
from keepwell.risk.models import RiskScore
from keepwell.surveys.models import SurveyKind, SurveyResponse


@dataclass(frozen=True)
class Hit:
    """A customer a trigger matched: the occurrence's identity and a sentence saying why."""

    customer_id: int
    occurrence: str
    reason: str


@dataclass
class TriggerContext:
    """What triggers read: the session, settings, the run's clock and cached usage rows."""

    db_session: Session
    settings: Settings
    now: datetime
    _usage: dict[int, dict[str, Any]] | None = None

    def usage(self) -> dict[int, dict[str, Any]]:
        """Per-customer usage features as of today (computed once per run)."""
        if self._usage is None:
            from keepwell.automation.usage import usage_features

            self._usage = usage_features(
                db_session=self.db_session, settings=self.settings, now=self.now
            )
        return self._usage


def usage_drop(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    hits = []
    for cid, row in ctx.usage().items():
        pct, prev = row["events_pct_change"], row["events_prev_28"]
        if pct is None or prev < params["min_previous_events"] or -pct < params["percent"]:
            continue
        block = (row["as_of"] - date(1970, 1, 1)).days // 28
        reason = (
            f"usage fell {-pct:.0f}% in the last 28 days "
            f"({row['events_28']} events vs {prev} in the 28 days before)"
        )
        hits.append(Hit(cid, f"usage_drop:{block}", reason))
    return hits


def no_activity(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    hits = []
    for cid, row in ctx.usage().items():
        idle = row["days_since_last_event"]
        if idle is None:  # no event ever: idle since the current paid spell started
            idle, since = row["tenure_days"], "never"
            text = f"no activity since becoming a customer {idle} days ago"
        else:
            since = (row["as_of"] - timedelta(days=idle)).isoformat()
            text = f"no activity for {idle} days (last active {since})"
        if idle is not None and idle >= params["days"]:
            hits.append(Hit(cid, f"no_activity:{since}", text))
    return hits


def invoice_overdue(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    cutoff = ctx.now - timedelta(days=params["days"])
    rows = ctx.db_session.scalars(
        select(Invoice).where(
            Invoice.paid_at.is_(None),
            Invoice.status.in_([InvoiceStatus.open, InvoiceStatus.overdue]),
            Invoice.due_at.is_not(None),
            Invoice.due_at <= cutoff,
        )
    )
    hits = []
    for inv in rows:
        days = (ctx.now - inv.due_at).days
        amount = format_money(inv.amount_minor, inv.currency)
        reason = f"invoice {inv.external_id} ({amount}) is {days} days overdue"
        hits.append(Hit(inv.customer_id, f"invoice:{inv.id}:overdue", reason))
    return hits


def payment_failed(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    since = ctx.now - timedelta(days=params["within_days"])
    rows = ctx.db_session.scalars(
        select(Invoice).where(
            Invoice.status == InvoiceStatus.failed,
            Invoice.issued_at >= since,
            Invoice.issued_at <= ctx.now,
        )
    )
    hits = []
    for inv in rows:
        amount = format_money(inv.amount_minor, inv.currency)
        why = f": {inv.failure_reason}" if inv.failure_reason else ""
        reason = f"payment of invoice {inv.external_id} ({amount}) failed{why}"
        hits.append(Hit(inv.customer_id, f"invoice:{inv.id}:failed", reason))
    return hits


def _latest_two(ctx: TriggerContext, model, value):
    """(customer_id, id, value, as_of, previous value) of each customer's latest score."""
    rank = (
        func.row_number()
        .over(partition_by=model.customer_id, order_by=[model.scored_at.desc(), model.id.desc()])
        .label("rank")
    )
    scored = (
        select(model.customer_id, model.id, value.label("value"), model.as_of, rank)
        .where(model.scored_at <= ctx.now)
        .subquery()
    )
    rows = ctx.db_session.execute(
        select(scored).where(scored.c.rank <= 2).order_by(scored.c.customer_id, scored.c.rank)
    ).all()
    out: dict[int, list] = {}
    for row in rows:
        out.setdefault(row.customer_id, []).append(row)
    for cid, pair in out.items():
        yield cid, pair[0], (pair[1].value if len(pair) > 1 else None)


def risk_crossed(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    t = params["threshold"]
    hits = []
    for cid, latest, previous in _latest_two(ctx, RiskScore, RiskScore.probability):
        if latest.value >= t and (previous is None or previous < t):
            before = f" (was {previous:.0%})" if previous is not None else ""
            reason = f"churn risk rose to {latest.value:.0%}{before}, at or above {t:.0%}"
            hits.append(Hit(cid, f"risk:{latest.id}", reason))
    return hits


def health_red(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    hits = []
    for cid, latest, previous in _latest_two(ctx, HealthScore, HealthScore.band):
        if latest.value == "red" and previous != "red":
            before = f" (was {previous})" if previous is not None else ""
            hits.append(Hit(cid, f"health:{latest.id}", f"health turned red{before}"))
    return hits


def nps_detractor(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    since = ctx.now - timedelta(days=params["within_days"])
    rows = ctx.db_session.scalars(
        select(SurveyResponse).where(
            SurveyResponse.kind == SurveyKind.nps,
            SurveyResponse.score <= params["max_score"],
            SurveyResponse.responded_at >= since,
            SurveyResponse.responded_at <= ctx.now,
        )
    )
    hits = []
    for resp in rows:
        comment = f": “{resp.comment}”" if resp.comment else ""
        hits.append(Hit(resp.customer_id, f"survey:{resp.id}", f"NPS answer {resp.score}{comment}"))
    return hits


def next_renewal(sub: Subscription, now: datetime) -> datetime:
    """The first renewal of ``sub`` after ``now``: its start plus whole billing periods."""
    months = MONTHS_PER_PERIOD[BillingPeriod(sub.billing_period)]
    elapsed = relativedelta(now, sub.started_at)
    k = max(1, (elapsed.years * 12 + elapsed.months) // months)
    renewal = sub.started_at + relativedelta(months=k * months)
    while renewal <= now:
        k += 1
        renewal = sub.started_at + relativedelta(months=k * months)
    return renewal


def renewal_in(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    rows = ctx.db_session.scalars(
        select(Subscription).where(
            Subscription.status.in_([SubscriptionStatus.active, SubscriptionStatus.past_due]),
            Subscription.billing_period.in_(params["billing_periods"]),
            Subscription.started_at <= ctx.now,
            Subscription.ended_at.is_(None),
            Subscription.mrr_minor > 0,
        )
    )
    hits = []
    horizon = ctx.now + timedelta(days=params["days"])
    for sub in rows:
        renewal = next_renewal(sub, ctx.now)
        if renewal <= horizon:
            days = (renewal - ctx.now).days
            reason = f"{sub.plan} renews on {renewal:%Y-%m-%d} (in {days} days)"
            hits.append(Hit(sub.customer_id, f"renewal:{sub.id}:{renewal:%Y-%m-%d}", reason))
    return hits


def segment_entered(ctx: TriggerContext, params: dict[str, Any]) -> list[Hit]:
    from keepwell.segments.models import Segment, SegmentMembershipChange

    since = ctx.now - timedelta(days=params["within_days"])
    rows = ctx.db_session.execute(
        select(SegmentMembershipChange.id, SegmentMembershipChange.customer_id)
        .join(Segment, Segment.id == SegmentMembershipChange.segment_id)
        .where(
            Segment.name == params["segment"],
            SegmentMembershipChange.change == "entered",
            SegmentMembershipChange.at >= since,
            SegmentMembershipChange.at <= ctx.now,
        )
    ).all()
    return [
        Hit(cid, f"segment:{change_id}", f"entered segment {params['segment']!r}")
        for change_id, cid in rows
    ]


TRIGGERS: dict[str, Callable[[TriggerContext, dict[str, Any]], list[Hit]]] = {
    "usage_drop": usage_drop,
    "no_activity": no_activity,
    "invoice_overdue": invoice_overdue,
    "payment_failed": payment_failed,
    "risk_crossed": risk_crossed,
    "health_red": health_red,
    "nps_detractor": nps_detractor,
    "renewal_in": renewal_in,
    "segment_entered": segment_entered,
}
