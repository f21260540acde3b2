"""Campaign results: delivery and engagement per variant, retention effect vs holdout."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from sqlalchemy import select

from keepwell.billing.models import SubscriptionStatus
from keepwell.campaigns import service
from keepwell.campaigns.models import CampaignRecipient
from keepwell.campaigns.service import VariantIn
from keepwell.config import Settings
from keepwell.email import service as email_service
from keepwell.email.models import EmailMessage, EventKind
from keepwell.errors import InvalidInput
from tests.factories import at, make_customer, make_subscription

LAUNCH = at(2026, 6, 1, 12)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _fisher_two_sided(a: int, n1: int, c: int, n2: int) -> float:
    """Sum of hypergeometric probabilities no larger than the observed table's."""
    total_churned, total = a + c, n1 + n2

    def prob(x: int) -> float:
        return math.comb(n1, x) * math.comb(n2, total_churned - x) / math.comb(total, total_churned)

    observed = prob(a)
    lo, hi = max(0, total_churned - n2), min(n1, total_churned)
    return sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= observed * (1 + 1e-7))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", secret_key="k", base_url="https://kw.test")


@pytest.fixture
def launched(db_session, settings):
    """64 paying customers, 50% holdout -> 32 recipients (variant A/B 50/50) and 32 held out."""
    for i in range(64):
        make_customer(db_session, name=f"C{i}", email=f"c{i}@shop.test", industry="retail")
    a = service.create_template(db_session=db_session, name="a", subject="A", html="<p>A</p>")
    b = service.create_template(db_session=db_session, name="b", subject="B", html="<p>B</p>")
    campaign = service.create_campaign(
        db_session=db_session,
        name="winback",
        variants=[VariantIn("A", a, 50), VariantIn("B", b, 50)],
        filter_text='industry = "retail"',
        holdout_percent=50,
        seed=99,
    )
    report = service.launch(db_session=db_session, settings=settings, campaign=campaign, now=LAUNCH)
    assert (report.holdout, report.by_variant) == (32, {"A": 16, "B": 16})
    return campaign


def _groups(db_session, campaign) -> tuple[list[int], list[int], dict[str, list[int]]]:
    names = {v.id: v.name for v in campaign.variants}
    treated, held, by_variant = [], [], {"A": [], "B": []}
    for r in db_session.scalars(
        select(CampaignRecipient)
        .where(CampaignRecipient.campaign_id == campaign.id)
        .order_by(CampaignRecipient.customer_id)
    ):
        if r.variant_id is None:
            held.append(r.customer_id)
        else:
            treated.append(r.customer_id)
            by_variant[names[r.variant_id]].append(r.customer_id)
    return treated, held, by_variant


def test_delivery_and_engagement_counts(db_session, launched) -> None:
    messages = {
        m.customer_id: m
        for m in db_session.scalars(
            select(EmailMessage).where(EmailMessage.campaign_id == launched.id)
        )
    }
    _, _, by_variant = _groups(db_session, launched)
    a_msgs = [messages[c] for c in by_variant["A"]]
    b_msgs = [messages[c] for c in by_variant["B"]]
    # variant A (16): 12 sent, 2 failed, 1 bounced, 1 still queued
    for m in a_msgs[:12]:
        m.state = "sent"
    for m in a_msgs[12:14]:
        m.state = "failed"
    a_msgs[14].state = "bounced"
    # variant B (16): 13 sent, 1 bounced, 2 still queued
    for m in b_msgs[:13]:
        m.state = "sent"
    b_msgs[13].state = "bounced"
    db_session.flush()

    def event(m, kind):
        email_service.record_event(db_session=db_session, message=m, kind=kind)

    for m in a_msgs[:10]:
        event(m, EventKind.delivered)
    for m in a_msgs[:6]:
        event(m, EventKind.opened)
    event(a_msgs[0], EventKind.opened)  # a second open of the same message counts once
    for m in a_msgs[:2]:
        event(m, EventKind.clicked)
        event(m, EventKind.clicked)
    event(a_msgs[5], EventKind.unsubscribed)
    for m in b_msgs[:13]:
        event(m, EventKind.delivered)
    event(b_msgs[0], EventKind.opened)

    res = service.results(db_session=db_session, campaign=launched, now=LAUNCH + timedelta(1))
    a, b = res.variants
    assert (a.name, a.audience, a.queued, a.pending, a.sent, a.failed, a.bounced) == (
        "A",
        16,
        16,
        1,
        12,
        2,
        1,
    )
    assert (a.delivered, a.opened, a.clicked, a.unsubscribed) == (10, 6, 2, 1)
    assert a.delivered_rate == 10 / 12 and a.open_rate == 6 / 12 and a.click_rate == 2 / 12
    assert a.unsubscribe_rate == 1 / 12 and a.bounce_rate == 1 / 13
    assert (b.sent, b.bounced, b.pending, b.delivered, b.opened, b.clicked) == (13, 1, 2, 13, 1, 0)
    total = res.total
    assert (total.name, total.audience, total.sent, total.opened, total.pending) == (
        "all",
        32,
        25,
        7,
        3,
    )
    assert (res.audience, res.holdout, res.status) == (64, 32, "sending")
    # once nothing is left in the outbox the campaign is sent
    for m in a_msgs[15:] + b_msgs[14:]:
        m.state = "sent"
    db_session.flush()
    res = service.results(db_session=db_session, campaign=launched, now=LAUNCH + timedelta(2))
    assert res.status == "sent" and res.total.pending == 0 and res.total.sent == 28


def test_retention_effect_hand_computed(db_session, launched) -> None:
    treated, held, _ = _groups(db_session, launched)
    from keepwell.customers.models import Customer

    customers = {c.id: c for c in db_session.scalars(select(Customer))}

    def paying(cid, **kw):
        make_subscription(db_session, customers[cid], started_at=at(2026, 1, 1), **kw)

    # recipients: one only on a trial (not paying at launch: left out), 3 churn in the window
    paying(treated[0], status=SubscriptionStatus.trialing)
    for cid in treated[1:4]:
        paying(cid, ended_at=LAUNCH + timedelta(days=10), status=SubscriptionStatus.canceled)
    for cid in treated[4:]:
        paying(cid)
    # holdout: 9 churn in the window, 1 after it (day 40: still a customer at day 30)
    for cid in held[:9]:
        paying(cid, ended_at=LAUNCH + timedelta(days=20), status=SubscriptionStatus.canceled)
    paying(held[9], ended_at=LAUNCH + timedelta(days=40))
    for cid in held[10:]:
        paying(cid)

    res = service.results(
        db_session=db_session, campaign=launched, retention_days=30, now=at(2026, 8, 1)
    )
    e = res.retention
    assert (e.recipients, e.recipients_churned, e.holdout, e.holdout_churned) == (31, 3, 32, 9)
    assert e.enough_data and e.complete and e.days == 30
    p1, p2 = 3 / 31, 9 / 32
    assert e.difference == pytest.approx(p1 - p2)
    l1, u1 = _wilson(3, 31)
    l2, u2 = _wilson(9, 32)
    assert e.ci_low == pytest.approx(p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2))
    assert e.ci_high == pytest.approx(p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
    assert e.p_value == pytest.approx(_fisher_two_sided(3, 31, 9, 32), rel=1e-9)
    assert e.ci_low < 0 < e.ci_high or e.ci_high < 0
    # per variant against the same holdout: groups of 15/16 are too small
    assert set(res.retention_by_variant) == {"A", "B"}
    assert not res.retention_by_variant["A"].enough_data
    assert "not enough data" in res.retention_by_variant["A"].note
    # 10 days after launch: an interim figure measured now (nobody has churned yet at day 5)
    early = service.results(
        db_session=db_session, campaign=launched, now=LAUNCH + timedelta(days=5)
    ).retention
    assert not early.complete and early.recipients_churned == 0 and early.holdout_churned == 0
    assert "not ended yet" in early.note


def test_results_without_holdout_or_launch(db_session, settings) -> None:
    make_customer(db_session, name="x", email="x@y.test", industry="retail")
    t = service.create_template(db_session=db_session, name="t", subject="s", html="b")
    campaign = service.create_campaign(
        db_session=db_session,
        name="n",
        variants=[VariantIn("A", t, 100)],
        filter_text='industry = "retail"',
    )
    draft = service.results(db_session=db_session, campaign=campaign)
    assert draft.retention is None and draft.audience == 0 and draft.status == "draft"
    service.launch(db_session=db_session, settings=settings, campaign=campaign, now=LAUNCH)
    res = service.results(db_session=db_session, campaign=campaign)
    assert res.retention is None and res.audience == 1 and res.total.queued == 1
    for bad in (0, -3, 5000, 2.5):
        with pytest.raises(InvalidInput) as err:
            service.results(db_session=db_session, campaign=campaign, retention_days=bad)
        assert err.value.field == "retention_days"
