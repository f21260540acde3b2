"""A small campaign sent through keepwell's SMTP sender to a real aiosmtpd server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from keepwell import migrate
from keepwell.campaigns import service
from keepwell.campaigns.models import CampaignRecipient
from keepwell.campaigns.service import VariantIn
from keepwell.config import Settings
from keepwell.customers.models import Contact
from keepwell.db import make_engine, make_sessionmaker
from keepwell.email import service as email_service
from keepwell.email.sender import send_due
from tests.email.smtpd import Recorder, start_server
from tests.factories import make_customer, make_subscription


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    controller = start_server(recorder)
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


@pytest.fixture
def store(isolated_database_url, smtp, tmp_path):
    engine = make_engine(isolated_database_url)
    migrate.upgrade(engine)
    settings = Settings(
        home=tmp_path / "home",
        database_url=isolated_database_url,
        smtp_port=smtp[1],
        secret_key="e2e-secret",
        base_url="https://kw.example",
        mail_from="Keepwell Team <team@kw.example>",
    )
    yield engine, settings
    engine.dispose()


def test_campaign_reaches_the_smtp_server(store, smtp) -> None:
    engine, settings = store
    recorder, _ = smtp
    sessions = make_sessionmaker(engine)
    with sessions() as db:
        for i in range(10):
            c = make_customer(
                db, name=f"Hotel <{i}> & Spa", email=f"h{i}@hotel.test", industry="hospitality"
            )
            c.contacts.append(Contact(name=f"Zoë{i} Muster", email=None, is_primary=True))
            make_subscription(db, c, plan="pro", mrr_minor=4900 + i, currency="EUR")
        make_customer(db, name="Gone", email="gone@hotel.test", industry="hospitality")
        email_service.suppress(db_session=db, address="gone@hotel.test", reason="hard_bounce")
        service.create_template(
            db_session=db,
            name="offer",
            subject="{{ customer.first_name | default('Hello') }}, a payment holiday for you",
            html=(
                "<html><body><p>Dear {{ customer.first_name }},</p>"
                "<p>{{ customer.name }} pays {{ mrr }} a month on {{ plan }}.</p>"
                "<p><a href='https://shop.example/holiday'>Take a break</a></p>"
                "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p></body></html>"
            ),
        )
        campaign = service.create_campaign(
            db_session=db,
            name="holiday",
            variants=[VariantIn("A", "offer", 100)],
            filter_text='industry = "hospitality"',
            holdout_percent=40,
            seed=11,
        )
        report = service.launch(db_session=db, settings=settings, campaign=campaign)
        db.commit()
        campaign_id = campaign.id
    assert (report.audience, report.holdout, report.queued) == (10, 4, 6)
    assert report.excluded == {"suppressed": 1}

    sent = send_due(settings)
    assert sent.sent == 6 and sent.failed == 0
    assert sorted(recorder.by_recipient().values()) == [1] * 6
    with sessions() as db:
        rows = db.scalars(
            select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
        ).all()
        held = {r.address for r in rows if r.variant_id is None}
        got = set(recorder.by_recipient())
        assert len(held) == 4 and not held & got  # the holdout group got nothing
        assert "gone@hotel.test" not in got

    first = recorder.received[0]
    msg = first.message
    number = re.search(r"h(\d)@", first.rcpt_to[0]).group(1)
    assert msg["Subject"] == f"Zoë{number}, a payment holiday for you"
    assert msg["Message-ID"] and msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = msg["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://kw.example/u/")
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert f"Dear Zoë{number}," in html
    assert f"Hotel &lt;{number}&gt; &amp; Spa pays €49.0{number} a month on pro." in html
    assert "https://shop.example/holiday" not in html and "https://kw.example/c/" in html
    assert f"href='{unsubscribe}'" in html  # the same signed link as the header
    assert f"Hotel <{number}> & Spa pays €49.0{number}" in text
    assert f"Unsubscribe ({unsubscribe})" in text

    # the recipient unsubscribes with the link from the e-mail
    with sessions() as db:
        email_service.unsubscribe(
            db_session=db, token=unsubscribe.rsplit("/", 1)[1], settings=settings
        )
        db.commit()
    # relaunching and sending again delivers nothing new
    with sessions() as db:
        campaign = service.get_campaign(db_session=db, name_or_id="holiday")
        again = service.launch(db_session=db, settings=settings, campaign=campaign)
        db.commit()
    assert again.queued == 0 and again.relaunch
    assert send_due(settings).attempted == 0
    assert len(recorder.received) == 6
    with sessions() as db:
        campaign = service.get_campaign(db_session=db, name_or_id="holiday")
        res = service.results(db_session=db, campaign=campaign)
        db.commit()
    assert res.status == "sent"
    assert (res.total.sent, res.total.unsubscribed, res.total.pending, res.holdout) == (6, 1, 0, 4)
    assert res.total.unsubscribe_rate == 1 / 6
