"""Deals: validation, stages and history, won/lost, weighted pipeline, renewals, timeline."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.billing.models import BillingPeriod, SubscriptionStatus
from keepwell.deals import service
from keepwell.deals.models import Deal, DealKind, StageOutcome
from keepwell.errors import InvalidInput, NotFound
from keepwell.timeline import service as timeline
from tests.factories import at, make_customer, make_subscription
from tests.tasks.helpers import make_staff


def _deal(db_session, customer, **kw) -> Deal:
    args = {"title": "More seats", "value_minor": 10_000, "currency": "USD"} | kw
    return service.create_deal(db_session=db_session, customer_id=customer.id, **args)


def _count(db_session) -> int:
    return db_session.scalar(select(func.count(Deal.id)))


def test_default_stages_seeded_by_the_migration(db_session: Session) -> None:
    stages = service.list_stages(db_session=db_session)
    assert [(s.name, s.probability_pct, s.outcome.value) for s in stages] == [
        ("qualified", 10, "open"),
        ("proposal", 30, "open"),
        ("negotiation", 60, "open"),
        ("won", 100, "won"),
        ("lost", 0, "lost"),
    ]


def test_create_deal_defaults_history_and_timeline(db_session: Session) -> None:
    c = make_customer(db_session)
    ana = make_staff(db_session, "Ana")
    deal = _deal(
        db_session,
        c,
        owner_id=ana.id,
        kind="expansion",
        currency="eur",
        expected_close_at="2026-06-30",
        at=at(2026, 5, 1),
    )
    assert deal.stage.name == "qualified" and deal.closed_at is None
    assert deal.currency == "EUR" and deal.kind is DealKind.expansion
    assert deal.expected_close_at == at(2026, 6, 30, 23, 59, 59)
    history = service.stage_history(db_session=db_session, deal_id=deal.id)
    assert [(h.from_stage_id, h.to_stage_id, h.changed_at) for h in history] == [
        (None, deal.stage_id, at(2026, 5, 1))
    ]
    items = timeline.for_customer(db_session=db_session, customer_id=c.id)
    assert [(i.kind, i.title) for i in items] == [
        ("deal", "Deal opened (expansion, €100.00): More seats")
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"title": " "}, InvalidInput, "field 'title': a deal needs a title"),
        ({"value_minor": -1}, InvalidInput, "field 'value_minor': value -1 is negative"),
        ({"value_minor": 10.5}, InvalidInput, "field 'value_minor': 10.5 is not an amount"),
        ({"value_minor": "100"}, InvalidInput, "field 'value_minor'"),
        ({"currency": "EURO"}, InvalidInput, "field 'currency': unknown currency 'EURO'"),
        ({"currency": "ZZZ"}, InvalidInput, "unknown currency 'ZZZ'"),
        ({"kind": "upgrade"}, InvalidInput, "field 'kind': unknown deal kind 'upgrade'"),
        ({"stage": "closing"}, NotFound, "no deal stage 'closing'"),
        ({"owner_id": 313131}, NotFound, "no staff user with id 313131"),
        ({"expected_close_at": "next week"}, InvalidInput, "field 'expected_close_at'"),
    ],
)
def test_create_deal_rejects_bad_input(db_session, kwargs, error, message) -> None:
    c = make_customer(db_session)
    with pytest.raises(error, match=message):
        _deal(db_session, c, **kwargs)
    assert _count(db_session) == 0
    assert timeline.for_customer(db_session=db_session, customer_id=c.id) == []


def test_unknown_customer(db_session: Session) -> None:
    with pytest.raises(NotFound, match="no customer with id 888888"):
        service.create_deal(
            db_session=db_session, customer_id=888_888, title="x", value_minor=1, currency="USD"
        )


def test_moves_record_history_and_close_or_reopen(db_session: Session) -> None:
    c = make_customer(db_session)
    deal = _deal(db_session, c, at=at(2026, 1, 1))
    service.move_deal(db_session=db_session, deal_id=deal.id, stage="Proposal", at=at(2026, 1, 5))
    service.move_deal(
        db_session=db_session, deal_id=deal.id, stage="negotiation", at=at(2026, 1, 9)
    )
    with pytest.raises(InvalidInput, match="already in stage 'negotiation'"):
        service.move_deal(db_session=db_session, deal_id=deal.id, stage="negotiation")
    with pytest.raises(NotFound, match="no deal stage 'signed'"):
        service.move_deal(db_session=db_session, deal_id=deal.id, stage="signed")
    with pytest.raises(InvalidInput, match="field 'reason': say why the deal was lost"):
        service.lose_deal(db_session=db_session, deal_id=deal.id, reason="  ")
    assert deal.stage.name == "negotiation" and deal.closed_at is None
    service.lose_deal(
        db_session=db_session, deal_id=deal.id, reason="budget cut", at=at(2026, 1, 20)
    )
    assert deal.stage.outcome is StageOutcome.lost
    assert (deal.closed_at, deal.close_reason) == (at(2026, 1, 20), "budget cut")
    service.move_deal(db_session=db_session, deal_id=deal.id, stage="proposal", at=at(2026, 2, 1))
    assert deal.closed_at is None and deal.close_reason is None  # reopened
    service.win_deal(db_session=db_session, deal_id=deal.id, reason="signed", at=at(2026, 2, 9))
    assert deal.stage.name == "won" and deal.closed_at == at(2026, 2, 9)

    stages = {s.id: s.name for s in service.list_stages(db_session=db_session)}
    history = service.stage_history(db_session=db_session, deal_id=deal.id)
    assert [
        (stages.get(h.from_stage_id), stages[h.to_stage_id], h.changed_at, h.reason)
        for h in history
    ] == [
        (None, "qualified", at(2026, 1, 1), None),
        ("qualified", "proposal", at(2026, 1, 5), None),
        ("proposal", "negotiation", at(2026, 1, 9), None),
        ("negotiation", "lost", at(2026, 1, 20), "budget cut"),
        ("lost", "proposal", at(2026, 2, 1), None),
        ("proposal", "won", at(2026, 2, 9), "signed"),
    ]
    titles = [i.title for i in timeline.for_customer(db_session=db_session, customer_id=c.id)]
    assert sorted(titles) == sorted(
        [
            "Deal opened (upsell, $100.00): More seats",
            "Deal moved qualified -> proposal: More seats",
            "Deal moved proposal -> negotiation: More seats",
            "Deal lost (budget cut): More seats",
            "Deal reopened in proposal: More seats",
            "Deal won ($100.00): More seats",
        ]
    )
    with pytest.raises(NotFound, match="no deal with id 7777777"):
        service.stage_history(db_session=db_session, deal_id=7_777_777)


def test_update_deal(db_session: Session) -> None:
    c = make_customer(db_session)
    bo = make_staff(db_session, "Bo")
    deal = _deal(db_session, c)
    service.update_deal(db_session=db_session, deal_id=deal.id, value_minor=25_000, owner_id=bo.id)
    assert (deal.value_minor, deal.owner_id) == (25_000, bo.id)
    with pytest.raises(InvalidInput, match="negative"):
        service.update_deal(db_session=db_session, deal_id=deal.id, value_minor=-5)
    assert deal.value_minor == 25_000
    updated = [
        i
        for i in timeline.for_customer(db_session=db_session, customer_id=c.id)
        if i.title.startswith("Deal updated")
    ]
    assert updated[0].detail["changes"] == {
        "value_minor": [10_000, 25_000],
        "owner_id": [None, bo.id],
    }


def test_configure_stages(db_session: Session) -> None:
    demo = service.configure_stage(
        db_session=db_session, name="demo", position=15, probability_pct=20
    )
    names = [s.name for s in service.list_stages(db_session=db_session)]
    assert names[:3] == ["qualified", "demo", "proposal"]
    service.configure_stage(db_session=db_session, name="Demo", probability_pct=25)
    assert demo.probability_pct == 25
    with pytest.raises(InvalidInput, match="field 'probability_pct'"):
        service.configure_stage(db_session=db_session, name="demo", probability_pct=101)
    with pytest.raises(InvalidInput, match="field 'outcome'"):
        service.configure_stage(db_session=db_session, name="demo", outcome="maybe")
    c = make_customer(db_session)
    deal = _deal(db_session, c, stage="demo")
    with pytest.raises(InvalidInput, match="holds 1 deal"):
        service.configure_stage(db_session=db_session, name="demo", outcome="won")
    with pytest.raises(InvalidInput, match="in use"):
        service.delete_stage(db_session=db_session, stage="demo")
    assert deal.stage.name == "demo"
    spare = service.configure_stage(db_session=db_session, name="spare")
    service.delete_stage(db_session=db_session, stage=spare.id)
    assert "spare" not in [s.name for s in service.list_stages(db_session=db_session)]


def test_list_deals_filters(db_session: Session) -> None:
    a, b = make_customer(db_session), make_customer(db_session)
    ana = make_staff(db_session, "Ana")
    d1 = _deal(db_session, a, owner_id=ana.id, expected_close_at="2026-03-01")
    d2 = _deal(db_session, a, stage="proposal", kind="renewal")
    d3 = _deal(db_session, b, owner_id=ana.id, expected_close_at="2026-02-01")
    service.win_deal(db_session=db_session, deal_id=d2.id)

    def ids(**kw):
        return [d.id for d in service.list_deals(db_session=db_session, **kw)]

    assert ids() == [d3.id, d1.id, d2.id]  # stage order, then expected close
    assert ids(owner_id=ana.id) == [d3.id, d1.id]
    assert ids(customer_id=a.id) == [d1.id, d2.id]
    assert ids(kind="renewal") == [d2.id]
    assert ids(stage="won") == [d2.id]
    assert ids(open_only=True) == [d3.id, d1.id]
    with pytest.raises(InvalidInput, match="field 'kind'"):
        ids(kind="big")


def test_weighted_pipeline_hand_computed(db_session: Session) -> None:
    c = make_customer(db_session)
    ana, bo = make_staff(db_session, "Ana"), make_staff(db_session, "Bo")
    _deal(db_session, c, value_minor=10_000, owner_id=ana.id)  # qualified 10%: 1,000
    _deal(db_session, c, value_minor=2_550, owner_id=bo.id)  # qualified: 255
    _deal(db_session, c, value_minor=12_345, owner_id=ana.id, stage="proposal")  # 3,703.5
    _deal(db_session, c, value_minor=50_000, owner_id=bo.id, stage="negotiation")  # 30,000
    _deal(db_session, c, value_minor=999, stage="negotiation")  # 599.4, unowned
    _deal(db_session, c, value_minor=70_000, owner_id=ana.id, stage="won")  # closed: excluded
    lost = _deal(db_session, c, value_minor=1_000, owner_id=bo.id)
    service.lose_deal(db_session=db_session, deal_id=lost.id, reason="no budget")
    _deal(db_session, c, value_minor=20_000, currency="EUR", owner_id=ana.id, stage="proposal")

    summary = service.pipeline_summary(db_session=db_session)
    stage_rows = [
        (x.currency, x.key, x.deals, x.value_minor, x.weighted_minor) for x in summary.by_stage
    ]
    assert stage_rows == [
        ("EUR", "qualified", 0, 0, 0),
        ("EUR", "proposal", 1, 20_000, 6_000),
        ("EUR", "negotiation", 0, 0, 0),
        ("USD", "qualified", 2, 12_550, 1_255),
        ("USD", "proposal", 1, 12_345, 3_704),  # 3,703.5 rounds half-even to 3,704
        ("USD", "negotiation", 2, 50_999, 30_599),  # 30,599.4
    ]
    owner_rows = [
        (x.currency, x.key, x.deals, x.value_minor, x.weighted_minor) for x in summary.by_owner
    ]
    assert owner_rows == [
        ("EUR", "Ana", 1, 20_000, 6_000),
        ("USD", "Bo", 2, 52_550, 30_255),  # 255 + 30,000
        ("USD", "Ana", 2, 22_345, 4_704),  # 1,000 + 3,703.5 = 4,703.5 -> 4,704
        ("USD", "unassigned", 1, 999, 599),
    ]
    assert [(x.currency, x.deals, x.value_minor, x.weighted_minor) for x in summary.totals] == [
        ("EUR", 1, 20_000, 6_000),
        ("USD", 5, 75_894, 35_558),  # 35,557.9
    ]
    only_bo = service.pipeline_summary(db_session=db_session, owner_id=bo.id)
    assert [(x.currency, x.weighted_minor) for x in only_bo.totals] == [("USD", 30_255)]


def test_next_renewal_dates() -> None:
    from keepwell.billing.models import Subscription

    month_end = Subscription(started_at=at(2026, 1, 31), billing_period=BillingPeriod.month)
    assert service.next_renewal(month_end, after=at(2026, 2, 15)) == at(2026, 2, 28)
    assert service.next_renewal(month_end, after=at(2026, 2, 28)) == at(2026, 3, 31)
    assert service.next_renewal(month_end, after=at(2026, 1, 31)) == at(2026, 2, 28)
    leap = Subscription(started_at=at(2024, 2, 29), billing_period=BillingPeriod.year)
    assert service.next_renewal(leap, after=at(2025, 2, 1)) == at(2025, 2, 28)
    assert service.next_renewal(leap, after=at(2027, 12, 1)) == at(2028, 2, 29)
    quarterly = Subscription(started_at=at(2025, 11, 10), billing_period=BillingPeriod.quarter)
    assert service.next_renewal(quarterly, after=at(2025, 11, 10)) == at(2026, 2, 10)
    assert service.next_renewal(quarterly, after=at(2026, 2, 10, 0, 0, 1)) == at(2026, 5, 10)


def test_renewal_deals_created_once(db_session: Session) -> None:
    ana = make_staff(db_session, "Ana")
    c = make_customer(db_session, owner_id=ana.id)
    yearly = make_subscription(
        db_session,
        c,
        plan="business",
        mrr_minor=1_000,
        billing_period=BillingPeriod.year,
        started_at=at(2025, 3, 15),
    )
    other = make_customer(db_session)
    make_subscription(
        db_session, other, billing_period=BillingPeriod.month, started_at=at(2025, 3, 15)
    )  # monthly: not by default
    make_subscription(
        db_session, other, billing_period=BillingPeriod.year, started_at=at(2025, 6, 1)
    )  # renews 2026-06-01: too far
    make_subscription(
        db_session,
        other,
        billing_period=BillingPeriod.year,
        started_at=at(2025, 3, 20),
        ended_at=at(2026, 3, 1),
    )  # ends first
    make_subscription(
        db_session,
        other,
        billing_period=BillingPeriod.year,
        started_at=at(2025, 3, 20),
        status=SubscriptionStatus.canceled,
    )
    make_subscription(
        db_session,
        other,
        billing_period=BillingPeriod.year,
        mrr_minor=0,
        started_at=at(2025, 3, 20),
    )  # free
    gone = make_staff(db_session, "Gone", is_active=False)
    orphan = make_customer(db_session, owner_id=gone.id)
    orphan_sub = make_subscription(
        db_session, orphan, billing_period=BillingPeriod.year, started_at=at(2025, 3, 1)
    )

    run = service.create_renewal_deals(db_session=db_session, days_ahead=60, at=at(2026, 2, 1))
    assert (len(run.created), run.existing) == (2, 0)
    by_sub = {d.subscription_id: d for d in run.created}
    assert by_sub[orphan_sub.id].owner_id is None  # the customer's owner is deactivated
    assert by_sub[orphan_sub.id].expected_close_at == at(2026, 3, 1)
    deal = by_sub[yearly.id]
    assert deal.kind is DealKind.renewal and deal.subscription_id == yearly.id
    assert (deal.value_minor, deal.currency, deal.owner_id) == (12_000, "USD", ana.id)
    assert deal.expected_close_at == at(2026, 3, 15)
    assert deal.dedup_key == f"renewal:{yearly.id}:2026-03-15"
    assert deal.title == "Renewal of business on 2026-03-15"

    again = service.create_renewal_deals(db_session=db_session, days_ahead=60, at=at(2026, 2, 10))
    assert (len(again.created), again.existing) == (0, 2)
    assert _count(db_session) == 2
    # the year after, the next renewal gets its own deal
    later = service.create_renewal_deals(db_session=db_session, days_ahead=60, at=at(2027, 2, 1))
    assert [d.expected_close_at for d in later.created] == [at(2027, 3, 15), at(2027, 3, 1)]
    monthly = service.create_renewal_deals(
        db_session=db_session, days_ahead=10, at=at(2026, 2, 10), periods=["month"]
    )
    assert [d.expected_close_at for d in monthly.created] == [at(2026, 2, 15)]
    assert monthly.created[0].value_minor == 4_900
    titles = [i.title for i in timeline.for_customer(db_session=db_session, customer_id=c.id)]
    assert "Deal opened (renewal, $120.00): Renewal of business on 2026-03-15" in titles


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"days_ahead": 0}, "field 'days_ahead'"), ({"periods": ["week"]}, "field 'periods'")],
)
def test_renewal_bad_input(db_session: Session, kwargs, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        service.create_renewal_deals(db_session=db_session, **kwargs)


def test_public_names_exist() -> None:
    from keepwell.customers import notes
    from keepwell.tasks import assignment
    from keepwell.tasks import service as tasks

    for module in (service, tasks, assignment, notes):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
