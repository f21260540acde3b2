"""Campaign results per variant: delivery, engagement, and the effect on retention.

Definitions (per variant, and for all variants together):

- audience: recipients assigned to the variant at launch; holdout: the control group.
- queued: messages put in the outbox; sent: accepted by the mail server (state ``sent``);
  failed / bounced / suppressed / cancelled: outbox states (``suppressed`` also counts
  recipients the outbox refused at launch); pending: still queued or being sent.
- delivered, opened, clicked, unsubscribed: messages with at least one such event (unique
  per message, so two opens of one e-mail count once).
- rates: delivered, opened, clicked and unsubscribed over *sent*; bounce rate over
  sent + bounced.
- retention: see :mod:`keepwell.campaigns.retention` (recipients = everyone assigned to a
  variant, sent or not: the comparison with the random holdout stays fair).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from keepwell.billing import service as billing_service
from keepwell.billing.models import SubscriptionStatus
from keepwell.campaigns.models import Campaign, CampaignRecipient, RecipientStatus
from keepwell.campaigns.retention import RetentionEffect, churn_effect
from keepwell.email.models import EmailEvent, EmailMessage
from keepwell.models import utcnow

__all__ = ["CampaignResults", "VariantResults", "results"]

STATES = ("queued", "sending", "sent", "failed", "bounced", "suppressed", "cancelled")
EVENTS = ("delivered", "opened", "clicked", "unsubscribed", "bounced")


@dataclass(frozen=True)
class VariantResults:
    """Delivery and engagement counts of one variant (or ``name="all"``)."""

    name: str
    audience: int
    queued: int
    pending: int
    sent: int
    delivered: int
    failed: int
    bounced: int
    suppressed: int
    cancelled: int
    opened: int
    clicked: int
    unsubscribed: int
    render_failed: int

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def delivered_rate(self) -> float | None:
        return self._rate(self.delivered, self.sent)

    @property
    def open_rate(self) -> float | None:
        return self._rate(self.opened, self.sent)

    @property
    def click_rate(self) -> float | None:
        return self._rate(self.clicked, self.sent)

    @property
    def unsubscribe_rate(self) -> float | None:
        return self._rate(self.unsubscribed, self.sent)

    @property
    def bounce_rate(self) -> float | None:
        return self._rate(self.bounced, self.sent + self.bounced)


@dataclass(frozen=True)
class CampaignResults:
    """Results of a campaign: per variant, all variants, holdout and retention effect.

    ``retention`` compares all recipients with the holdout; ``retention_by_variant`` each
    variant with the holdout. Both are None without a launch or without a holdout group.
    """

    campaign_id: int
    name: str
    status: str
    launched_at: datetime | None
    audience: int
    holdout: int
    variants: list[VariantResults]
    total: VariantResults
    retention: RetentionEffect | None
    retention_by_variant: dict[str, RetentionEffect]


def _variant_results(name: str, audience: int, states, events, refused, failed) -> VariantResults:
    return VariantResults(
        name=name,
        audience=audience,
        queued=sum(states.values()),
        pending=states.get("queued", 0) + states.get("sending", 0),
        sent=states.get("sent", 0),
        delivered=events.get("delivered", 0),
        failed=states.get("failed", 0),
        bounced=max(states.get("bounced", 0), events.get("bounced", 0)),
        suppressed=states.get("suppressed", 0) + refused,
        cancelled=states.get("cancelled", 0),
        opened=events.get("opened", 0),
        clicked=events.get("clicked", 0),
        unsubscribed=events.get("unsubscribed", 0),
        render_failed=failed,
    )


def _sum(rows: Iterable[VariantResults]) -> VariantResults:
    rows = list(rows)
    fields = [f for f in VariantResults.__dataclass_fields__ if f != "name"]
    return VariantResults("all", **{f: sum(getattr(r, f) for r in rows) for f in fields})


def _paying(db_session: Session, ids: Sequence[int], at: datetime) -> set[int]:
    """Which of ``ids`` are paying customers at ``at`` (billing's definition)."""
    out: set[int] = set()
    for start in range(0, len(ids), 1000):
        subs = billing_service.current_subscriptions(
            db_session=db_session, customer_ids=ids[start : start + 1000], at=at
        )
        for customer_id, rows in subs.items():
            if any(s.status != SubscriptionStatus.trialing and s.mrr_minor > 0 for s in rows):
                out.add(customer_id)
    return out


def _effect(
    db_session: Session,
    treated: Sequence[int],
    control: Sequence[int],
    start: datetime,
    end: datetime,
    days: int,
    complete: bool,
) -> RetentionEffect:
    paying_start = _paying(db_session, [*treated, *control], start)
    paying_end = _paying(db_session, [*treated, *control], end)
    t = [c for c in treated if c in paying_start]
    h = [c for c in control if c in paying_start]
    return churn_effect(
        recipients=len(t),
        recipients_churned=sum(c not in paying_end for c in t),
        holdout=len(h),
        holdout_churned=sum(c not in paying_end for c in h),
        days=days,
        complete=complete,
    )


def results(
    *,
    db_session: Session,
    campaign: Campaign,
    retention_days: int = 30,
    now: datetime | None = None,
) -> CampaignResults:
    """Counts per variant and the retention effect ``retention_days`` after launch.

    Before the window has passed (``now`` < launch + days) the effect is an interim figure
    (``complete`` False) measured at ``now``.
    """
    from keepwell.campaigns.service import refresh_status
    from keepwell.errors import InvalidInput

    if not isinstance(retention_days, int) or not 1 <= retention_days <= 3650:
        raise InvalidInput(
            f"retention window of {retention_days!r} days",
            field="retention_days",
            expected="1-3650",
        )
    when = now or utcnow()
    refresh_status(db_session=db_session, campaign=campaign, now=when)
    names = {v.id: v.name for v in campaign.variants}
    members: dict[int | None, list[int]] = defaultdict(list)
    refused: dict[int | None, int] = defaultdict(int)
    failed: dict[int | None, int] = defaultdict(int)
    for variant_id, customer_id, status in db_session.execute(
        select(
            CampaignRecipient.variant_id, CampaignRecipient.customer_id, CampaignRecipient.status
        ).where(CampaignRecipient.campaign_id == campaign.id)
    ):
        members[variant_id].append(customer_id)
        refused[variant_id] += status is RecipientStatus.suppressed
        failed[variant_id] += status is RecipientStatus.failed
    states: dict[str, dict[str, int]] = defaultdict(dict)
    for variant, state, n in db_session.execute(
        select(EmailMessage.variant, EmailMessage.state, func.count())
        .where(EmailMessage.campaign_id == campaign.id)
        .group_by(EmailMessage.variant, EmailMessage.state)
    ):
        states[variant][state] = n
    events: dict[str, dict[str, int]] = defaultdict(dict)
    for variant, kind, n in db_session.execute(
        select(EmailMessage.variant, EmailEvent.kind, func.count(distinct(EmailEvent.message_id)))
        .join(EmailEvent, EmailEvent.message_id == EmailMessage.id)
        .where(EmailMessage.campaign_id == campaign.id)
        .group_by(EmailMessage.variant, EmailEvent.kind)
    ):
        events[variant][kind] = n
    per_variant = [
        _variant_results(
            name,
            len(members.get(vid, [])),
            states.get(name, {}),
            events.get(name, {}),
            refused.get(vid, 0),
            failed.get(vid, 0),
        )
        for vid, name in names.items()
    ]
    holdout = members.get(None, [])
    retention = None
    by_variant: dict[str, RetentionEffect] = {}
    if campaign.launched_at is not None and holdout:
        start = campaign.launched_at
        end = start + timedelta(days=retention_days)
        complete = end <= when
        at_end = end if complete else when
        treated = [c for vid, ids in members.items() if vid is not None for c in ids]
        retention = _effect(db_session, treated, holdout, start, at_end, retention_days, complete)
        if len(names) > 1:
            for vid, name in names.items():
                by_variant[name] = _effect(
                    db_session,
                    members.get(vid, []),
                    holdout,
                    start,
                    at_end,
                    retention_days,
                    complete,
                )
    return CampaignResults(
        campaign_id=campaign.id,
        name=campaign.name,
        status=str(campaign.status),
        launched_at=campaign.launched_at,
        audience=sum(len(v) for v in members.values()),
        holdout=len(holdout),
        variants=per_variant,
        total=_sum(per_variant),
        retention=retention,
        retention_by_variant=by_variant,
    )
