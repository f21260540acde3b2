"""Campaigns: creation rules, audience snapshot, split, scheduling, launch, relaunch, cancel."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from keepwell.campaigns import service
from keepwell.campaigns.models import CampaignRecipient, CampaignStatus, RecipientStatus
from keepwell.campaigns.service import VariantIn
from keepwell.config import Settings
from keepwell.customers.models import Contact
from keepwell.email import service as email_service
from keepwell.email.models import EmailMessage
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.segments import service as segments
from keepwell.timeline.models import TimelineEntry
from tests.factories import at, make_customer

NOW = at(2026, 11, 20, 12)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", secret_key="s3cret", base_url="https://kw.test")


@pytest.fixture
def tpl(db_session):
    return service.create_template(
        db_session=db_session,
        name="hello",
        subject="Hello {{ customer.name }}",
        html=(
            "<p>Hi {{ customer.first_name | default('there') }}</p>"
            "<p><a href='https://shop.test/offer'>Offer</a> "
            "<a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>"
        ),
    )


@pytest.fixture
def tpl_b(db_session):
    return service.create_template(
        db_session=db_session, name="hello-b", subject="B for {{ customer.name }}", html="<p>B</p>"
    )


def _travel(db_session, n: int, **kw):
    return [
        make_customer(db_session, name=f"T{i}", email=f"t{i}@travel.test", industry="travel", **kw)
        for i in range(n)
    ]


def _recipients(db_session, campaign) -> list[CampaignRecipient]:
    return list(
        db_session.scalars(
            select(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign.id)
            .order_by(CampaignRecipient.customer_id)
        )
    )


def test_create_validations(db_session, tpl, tpl_b) -> None:
    def make(**kw):
        args = dict(
            db_session=db_session,
            name="c",
            variants=[VariantIn("A", "hello", 100)],
            filter_text='industry = "travel"',
        )
        args.update(kw)
        return service.create_campaign(**args)

    cases = [
        (dict(filter_text=None), "segment"),
        (dict(segment="x", filter_text='industry = "x"'), "segment"),
        (dict(filter_text="   "), "filter"),
        (dict(holdout_percent=100), "holdout_percent"),
        (dict(holdout_percent=-1), "holdout_percent"),
        (dict(variants=[]), "variants"),
        (dict(variants=[VariantIn("A", "hello", 50)]), "variants.percent"),
        (dict(variants=[VariantIn("A", "hello", 50), VariantIn("A", "hello-b", 50)]), None),
        (dict(variants=[VariantIn("", "hello", 100)]), "variants.name"),
        (dict(variants=[VariantIn("A", "hello", 0), VariantIn("B", "hello", 100)]), None),
        (dict(send_date=date(2026, 12, 1)), "send_time"),
        (dict(send_date=date(2026, 12, 1), send_time="9am"), "send_time"),
        (dict(seed=-1), "seed"),
        (dict(name=" "), "name"),
    ]
    for kw, field_name in cases:
        with pytest.raises(InvalidInput) as err:
            make(**kw)
        if field_name:
            assert err.value.field == field_name, kw
    with pytest.raises(InvalidInput):  # the filter language's own validation
        make(filter_text="industry ===")
    with pytest.raises(NotFound):
        make(variants=[VariantIn("A", "no-such-template", 100)])
    with pytest.raises(NotFound):
        make(segment="no-such-segment", filter_text=None)
    c = make(seed=5, send_date=date(2026, 12, 1), send_time="09:00")
    assert (c.status, c.seed, c.send_time, len(c.variants)) == (CampaignStatus.draft, 5, "09:00", 1)
    with pytest.raises(AlreadyExists):
        make()
    assert service.get_campaign(db_session=db_session, name_or_id="c") is c
    with pytest.raises(InvalidInput, match="used by campaign"):
        service.delete_template(db_session=db_session, template=tpl)


def test_audience_excludes_suppressed_and_addressless(db_session, settings, tpl) -> None:
    ok = _travel(db_session, 3)
    no_address = make_customer(db_session, name="NoMail", industry="travel")
    contact_only = make_customer(db_session, name="ViaContact", industry="travel")
    contact_only.contacts.append(Contact(name="Cy Doe", email="cy@contact.test", is_primary=True))
    bad = make_customer(db_session, name="Bad", email="not-an-address", industry="travel")
    suppressed = make_customer(db_session, name="Gone", email="Gone@Travel.test", industry="travel")
    other = make_customer(db_session, name="Other", email="o@other.test", industry="retail")
    email_service.suppress(db_session=db_session, address="gone@travel.test", reason="unsubscribed")
    db_session.flush()
    segment = segments.create_segment(
        db_session=db_session, name="travel", filter_text='industry = "travel"'
    )
    campaign = service.create_campaign(
        db_session=db_session, name="c", variants=[VariantIn("A", tpl, 100)], segment="travel"
    )
    assert campaign.segment_id == segment.id
    report = service.launch(db_session=db_session, settings=settings, campaign=campaign, now=NOW)
    assert report.excluded == {"no address": 1, "invalid address": 1, "suppressed": 1}
    assert report.audience == 4 and report.queued == 4 and report.holdout == 0
    got = {r.customer_id: r for r in _recipients(db_session, campaign)}
    assert set(got) == {c.id for c in ok} | {contact_only.id}
    assert got[contact_only.id].address == "cy@contact.test"
    assert no_address.id not in got and bad.id not in got and suppressed.id not in got
    assert other.id not in got
    messages = db_session.scalars(
        select(EmailMessage).where(EmailMessage.campaign_id == campaign.id)
    ).all()
    assert len(messages) == 4
    msg = next(m for m in messages if m.customer_id == contact_only.id)
    assert msg.subject == "Hello ViaContact" and "Hi Cy" in msg.html
    assert (msg.kind, msg.variant, msg.dedup_key) == (
        "campaign",
        "A",
        f"campaign:{campaign.id}:{contact_only.id}",
    )
    # the body carries the message's own signed unsubscribe link, tracked links, a pixel
    assert "https://kw.test/u/" in msg.html and "keepwell:unsubscribe" not in msg.html
    assert "https://shop.test/offer" not in msg.html and "https://kw.test/c/" in msg.html
    assert "https://kw.test/o/" in msg.html
    assert "Unsubscribe (https://kw.test/u/" in msg.text
    assert campaign.status is CampaignStatus.sending and campaign.launched_at == NOW
    entries = db_session.scalars(
        select(TimelineEntry).where(TimelineEntry.customer_id == contact_only.id)
    ).all()
    assert [e.title for e in entries] == ["Campaign 'c': e-mail queued (variant A)"]


def test_split_holdout_and_relaunch(db_session, settings, tpl, tpl_b) -> None:
    customers = _travel(db_session, 40)
    campaign = service.create_campaign(
        db_session=db_session,
        name="ab",
        variants=[VariantIn("A", tpl, 50), VariantIn("B", tpl_b, 50)],
        filter_text='industry = "travel"',
        holdout_percent=25,
        seed=1234,
    )
    first = service.launch(db_session=db_session, settings=settings, campaign=campaign, now=NOW)
    assert (first.audience, first.holdout, first.by_variant) == (40, 10, {"A": 15, "B": 15})
    assert first.queued == 30 and not first.relaunch
    rows = _recipients(db_session, campaign)
    held = {r.customer_id for r in rows if r.status is RecipientStatus.holdout}
    assert len(held) == 10 and all(r.message_id is None for r in rows if r.customer_id in held)
    # the assignment is the seeded split of the sorted audience
    from keepwell.campaigns.assignment import assign

    expected = assign(
        [c.id for c in customers], seed=1234, holdout_percent=25, variant_percents=[50, 50]
    )
    names = {v.id: v.name for v in campaign.variants}
    for r in rows:
        want = expected[r.customer_id]
        assert (None if r.variant_id is None else names[r.variant_id]) == (
            None if want is None else "AB"[want]
        )
    held_entry = db_session.scalar(
        select(TimelineEntry.title).where(TimelineEntry.customer_id == next(iter(held)))
    )
    assert held_entry == "Held out of campaign 'ab' (control group)"
    # relaunch: nothing new, nothing twice
    again = service.launch(db_session=db_session, settings=settings, campaign=campaign, now=NOW)
    assert again.relaunch and again.queued == 0 and again.not_queued == 0
    assert (again.audience, again.holdout) == (40, 10)
    count = db_session.scalar(
        select(EmailMessage.id)
        .where(EmailMessage.campaign_id == campaign.id)
        .order_by(EmailMessage.id.desc())
    )
    total = len(
        db_session.scalars(
            select(EmailMessage.id).where(EmailMessage.campaign_id == campaign.id)
        ).all()
    )
    assert total == 30 and count is not None
    # a recipient reset by hand (a crash between queueing and the status update) is not
    # queued twice: the outbox refuses the same dedup key
    victim = next(r for r in rows if r.status is RecipientStatus.queued)
    victim.status, victim.message_id = RecipientStatus.pending, None
    db_session.flush()
    third = service.launch(db_session=db_session, settings=settings, campaign=campaign, now=NOW)
    assert third.queued == 0 and third.not_queued == 1
    total = len(
        db_session.scalars(
            select(EmailMessage.id).where(EmailMessage.campaign_id == campaign.id)
        ).all()
    )
    assert total == 30


def test_local_time_scheduling(db_session, settings, tpl) -> None:
    zones = {
        "berlin": "Europe/Berlin",
        "ny": "America/New_York",
        "tokyo": "Asia/Tokyo",
        "nowhere": "Atlantis/Lost",
    }
    people = {
        key: make_customer(
            db_session, name=key, email=f"{key}@z.test", industry="travel", time_zone=zone
        )
        for key, zone in zones.items()
    }
    campaign = service.create_campaign(
        db_session=db_session,
        name="morning",
        variants=[VariantIn("A", tpl, 100)],
        filter_text='industry = "travel"',
        send_date=date(2026, 3, 29),  # Berlin switches to summer time that night
        send_time="09:00",
    )
    report = service.launch(db_session=db_session, settings=settings, campaign=campaign, now=NOW)
    assert report.unknown_time_zones == 1
    by_id = {r.customer_id: r.not_before for r in _recipients(db_session, campaign)}
    expected = {
        "berlin": at(2026, 3, 29, 7),  # CEST, UTC+2
        "ny": at(2026, 3, 29, 13),  # EDT since 2026-03-08
        "tokyo": at(2026, 3, 29, 0),
        "nowhere": at(2026, 3, 29, 9),  # unknown zone: UTC
    }
    for key, when in expected.items():
        assert by_id[people[key].id] == when
    messages = {
        m.customer_id: m.not_before
        for m in db_session.scalars(
            select(EmailMessage).where(EmailMessage.campaign_id == campaign.id)
        )
    }
    assert messages == by_id
    assert (report.first_send_at, report.last_send_at) == (at(2026, 3, 29, 0), at(2026, 3, 29, 13))
    assert report.status == "sending"  # these times are before NOW: due at once
    # a schedule in the future: scheduled, then sending once the first time has passed
    future = service.create_campaign(
        db_session=db_session,
        name="later",
        variants=[VariantIn("A", tpl, 100)],
        filter_text='industry = "travel"',
        send_date=date(2026, 12, 1),
        send_time="09:00",
    )
    rep = service.launch(db_session=db_session, settings=settings, campaign=future, now=NOW)
    assert rep.status == "scheduled"
    assert (
        service.refresh_status(db_session=db_session, campaign=future, now=at(2026, 12, 1, 0, 30))
        is CampaignStatus.sending
    )


def test_cancel(db_session, settings, tpl) -> None:
    _travel(db_session, 3)
    campaign = service.create_campaign(
        db_session=db_session,
        name="x",
        variants=[VariantIn("A", tpl, 100)],
        filter_text='industry = "travel"',
        send_date=date(2026, 12, 1),
        send_time="09:00",
    )
    service.launch(db_session=db_session, settings=settings, campaign=campaign, now=NOW)
    assert service.cancel_campaign(db_session=db_session, campaign=campaign) == 3
    assert campaign.status is CampaignStatus.cancelled and campaign.cancelled_at is not None
    states = db_session.scalars(
        select(EmailMessage.state).where(EmailMessage.campaign_id == campaign.id)
    ).all()
    assert states == ["cancelled"] * 3
    with pytest.raises(InvalidInput, match="cancelled"):
        service.launch(db_session=db_session, settings=settings, campaign=campaign)
    with pytest.raises(InvalidInput):
        service.cancel_campaign(db_session=db_session, campaign=campaign)
    draft = service.create_campaign(
        db_session=db_session,
        name="d",
        variants=[VariantIn("A", tpl, 100)],
        filter_text='industry = "travel"',
    )
    assert service.cancel_campaign(db_session=db_session, campaign=draft) == 0


def test_render_failures_are_reported_not_queued(db_session, settings) -> None:
    strict = service.create_template(
        db_session=db_session, name="strict", subject="s", html="Hi {{ customer.first_name }}"
    )
    make_customer(db_session, name="NoContact", email="n@x.test", industry="travel")
    campaign = service.create_campaign(
        db_session=db_session,
        name="s",
        variants=[VariantIn("A", strict, 100)],
        filter_text='industry = "travel"',
    )
    report = service.launch(db_session=db_session, settings=settings, campaign=campaign, now=NOW)
    assert report.failed == 1 and report.queued == 0
    assert "first_name" in report.errors[0]
    (row,) = _recipients(db_session, campaign)
    assert row.status is RecipientStatus.failed and "first_name" in row.error


def test_send_template_email(db_session, settings, acme, bare) -> None:
    service.create_template(
        db_session=db_session,
        name="nudge",
        subject="About {{ data.reason }}",
        html=(
            "<p>{{ customer.first_name }}: {{ data.reason }}</p>"
            "<a href='{{ unsubscribe_url }}'>u</a>"
        ),
    )
    message = service.send_template_email(
        db_session=db_session,
        settings=settings,
        template_name="nudge",
        customer_id=acme.id,
        context={"reason": "<usage fell>"},
        dedup_key="rule:1:acme",
    )
    assert message is not None and message.kind == "transactional"
    assert message.subject == "About <usage fell>"
    assert "<p>Bo: &lt;usage fell&gt;</p>" in message.html
    assert "https://kw.test/u/" in message.html and message.to_address == "billing@acme.test"
    again = service.send_template_email(
        db_session=db_session,
        settings=settings,
        template_name="nudge",
        customer_id=acme.id,
        context={"reason": "x"},
        dedup_key="rule:1:acme",
    )
    assert again is None
    with pytest.raises(InvalidInput, match="first_name"):  # bare has no contact
        service.send_template_email(
            db_session=db_session,
            settings=settings,
            template_name="nudge",
            customer_id=bare.id,
            context={"reason": "x"},
        )
    with pytest.raises(InvalidInput, match=r"data\.reason has no value"):
        service.send_template_email(
            db_session=db_session, settings=settings, template_name="nudge", customer_id=acme.id
        )
    with pytest.raises(NotFound):
        service.send_template_email(
            db_session=db_session, settings=settings, template_name="nope", customer_id=acme.id
        )
    with pytest.raises(NotFound):
        service.send_template_email(
            db_session=db_session, settings=settings, template_name="nudge", customer_id=10**9
        )
    nomail = make_customer(db_session, name="nomail")
    with pytest.raises(InvalidInput, match="no e-mail address"):
        service.send_template_email(
            db_session=db_session,
            settings=settings,
            template_name="nudge",
            customer_id=nomail.id,
            context={"reason": "x"},
        )
    email_service.suppress(db_session=db_session, address="billing@acme.test", reason="manual")
    assert (
        service.send_template_email(
            db_session=db_session,
            settings=settings,
            template_name="nudge",
            customer_id=acme.id,
            context={"reason": "y"},
        )
        is None
    )


class Crash(Exception):
    pass


def test_launch_cut_short_is_finished_by_the_next(db_session, settings, tpl, monkeypatch) -> None:
    _travel(db_session, 5)
    monkeypatch.setattr(service, "BATCH", 2)
    campaign = service.create_campaign(
        db_session=db_session,
        name="resume",
        variants=[VariantIn("A", tpl, 100)],
        filter_text='industry = "travel"',
    )
    calls: list[tuple[int, int]] = []

    def crash_on_third(report) -> None:
        db_session.commit()
        calls.append((report.to_queue, report.queued))
        if len(calls) == 3:
            raise Crash

    with pytest.raises(Crash):
        service.launch(
            db_session=db_session,
            settings=settings,
            campaign=campaign,
            now=NOW,
            on_batch=crash_on_third,
        )
    assert calls == [(5, 0), (5, 2), (5, 4)]  # snapshot, then one call per batch of 2
    assert campaign.status is CampaignStatus.sending and campaign.launched_at == NOW
    report = service.launch(db_session=db_session, settings=settings, campaign=campaign, now=NOW)
    assert report.relaunch and (report.to_queue, report.queued, report.not_queued) == (1, 1, 0)
    keys = db_session.scalars(
        select(EmailMessage.dedup_key).where(EmailMessage.campaign_id == campaign.id)
    ).all()
    assert len(keys) == len(set(keys)) == 5


@pytest.mark.parametrize(
    "ref", [2**63, -(2**63) - 1, "9" * 20, "#" + "9" * 30, "²", 2**63 - 1, "#0"]
)
def test_an_id_beyond_bigint_is_not_found(db_session, tpl, ref) -> None:
    with pytest.raises(NotFound, match="no campaign"):
        service.get_campaign(db_session=db_session, name_or_id=ref)
    with pytest.raises(NotFound, match="no e-mail template"):
        service.get_template(db_session=db_session, name_or_id=ref)
    assert service.get_template(db_session=db_session, name_or_id=f"#{tpl.id}") is tpl
