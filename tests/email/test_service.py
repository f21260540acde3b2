"""Outbox and suppression services, signed links and tracking (both database backends)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.email import service, tokens
from keepwell.email.links import track_links
from keepwell.email.models import EmailEvent, EmailMessage, EmailSuppression
from keepwell.errors import InvalidInput, NotFound
from keepwell.timeline.models import TimelineEntry
from tests.factories import at, make_customer

SETTINGS = Settings(secret_key="s3cret", base_url="https://kw.example/")


def queue(db_session: Session, **overrides) -> EmailMessage | None:
    values = {
        "customer_id": None,
        "to": "ana@example.com",
        "subject": "Hello",
        "html": "<p>Hello</p>",
        "text": "Hello",
        "kind": "campaign",
    }
    values.update(overrides)
    return service.queue_message(db_session=db_session, **values)


def test_queue_message_stores_a_queued_row(db_session: Session) -> None:
    customer = make_customer(db_session)
    message = queue(
        db_session,
        customer_id=customer.id,
        campaign_id=7,
        variant="B",
        not_before=at(2026, 12, 1, 9),
        headers={"Reply-To": "csm@kw.example"},
    )
    assert message is not None
    got = db_session.get(EmailMessage, message.id)
    assert (got.state, got.attempts, got.kind, got.campaign_id, got.variant) == (
        "queued",
        0,
        "campaign",
        7,
        "B",
    )
    assert got.not_before == at(2026, 12, 1, 9)
    assert got.headers == {"Reply-To": "csm@kw.example"}


def test_queueing_twice_with_a_dedup_key_is_a_no_op(db_session: Session) -> None:
    first = queue(db_session, dedup_key="welcome:42")
    assert first is not None
    assert queue(db_session, dedup_key="welcome:42", subject="Other") is None
    count = db_session.scalars(select(EmailMessage).where(EmailMessage.dedup_key == "welcome:42"))
    assert len(count.all()) == 1


def test_suppressed_address_is_not_queued_case_insensitively(db_session: Session) -> None:
    service.suppress(db_session=db_session, address="Ana@Example.com", reason="manual")
    assert service.is_suppressed(db_session=db_session, address="ANA@example.COM")
    assert queue(db_session, to="ana@EXAMPLE.com") is None


def test_suppress_marks_queued_messages_and_keeps_the_first_reason(db_session: Session) -> None:
    message = queue(db_session)
    first = service.suppress(db_session=db_session, address="ana@example.com", reason="complaint")
    again = service.suppress(db_session=db_session, address="ana@example.com", reason="manual")
    assert again.id == first.id and again.reason == "complaint"
    db_session.refresh(message)
    assert message.state == "suppressed"
    assert service.unsuppress(db_session=db_session, address="ANA@example.com") is True
    assert service.unsuppress(db_session=db_session, address="ana@example.com") is False
    assert not service.is_suppressed(db_session=db_session, address="ana@example.com")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"to": "not-an-address"}, "to"),
        ({"to": "ana@example.com\r\nBcc: eve@evil.test"}, "to"),  # header injection
        ({"to": "Ana <ana@example.com>"}, "to"),  # bare addresses only
        ({"to": ""}, "to"),
        ({"to": "zoë@example.com"}, "to"),  # no SMTPUTF8
        ({"subject": "Hi\r\nBcc: eve@evil.test"}, "subject"),
        ({"subject": "  "}, "subject"),
        ({"subject": "x" * 999}, "subject"),
        ({"html": None, "text": None}, "html"),
        ({"kind": "spam"}, "kind"),
        ({"not_before": datetime(2026, 12, 1, 9)}, "not_before"),  # naive
        ({"variant": "v" * 33}, "variant"),
        ({"dedup_key": ""}, "dedup_key"),
        ({"headers": {"From": "ceo@bank.test"}}, "headers"),  # the sender writes From
        ({"headers": {"List-Unsubscribe": "<x>"}}, "headers"),
        ({"headers": {"X-Tag": "a\nb"}}, "X-Tag"),
        ({"headers": {"Bad Name": "x"}}, "headers"),
        ({"headers": ["X-A", "b"]}, "headers"),
    ],
)
def test_queue_message_rejects_bad_input(db_session: Session, overrides, field) -> None:
    with pytest.raises(InvalidInput) as info:
        queue(db_session, **overrides)
    assert info.value.field == field
    assert db_session.scalars(select(EmailMessage)).all() == []


def test_suppress_rejects_unknown_reason_and_bad_address(db_session: Session) -> None:
    with pytest.raises(InvalidInput, match="unknown reason"):
        service.suppress(db_session=db_session, address="a@example.com", reason="annoyed")
    with pytest.raises(InvalidInput, match="not an e-mail address"):
        service.suppress(db_session=db_session, address="nobody", reason="manual")
    assert db_session.scalars(select(EmailSuppression)).all() == []


def test_cancel_and_status(db_session: Session) -> None:
    a = queue(db_session, to="a@example.com", campaign_id=1)
    queue(db_session, to="b@example.com", campaign_id=1, not_before=at(2030, 1, 1))
    queue(db_session, to="c@example.com", campaign_id=2)
    status = service.outbox_status(db_session=db_session, campaign_id=1)
    assert status.states["queued"] == 2 and status.pending == 2
    assert service.cancel(db_session=db_session, ids=[a.id]) == 1
    assert service.cancel(db_session=db_session, campaign_id=1) == 1
    status = service.outbox_status(db_session=db_session)
    assert (status.states["cancelled"], status.states["queued"]) == (2, 1)
    with pytest.raises(InvalidInput):
        service.cancel(db_session=db_session)
    with pytest.raises(NotFound):
        service.get_message(db_session=db_session, message_id=10**9)


def test_status_reports_the_next_due_time(db_session: Session) -> None:
    queue(db_session, not_before=at(2030, 1, 1, 8))
    queue(db_session, to="b@example.com", not_before=at(2030, 1, 2))
    assert service.outbox_status(db_session=db_session).next_due_at == at(2030, 1, 1, 8)


# --- signed links -------------------------------------------------------------------------


def test_unsubscribe_token_suppresses_and_records_once(db_session: Session) -> None:
    customer = make_customer(db_session)
    message = queue(db_session, customer_id=customer.id)
    url = tokens.unsubscribe_url(SETTINGS, message)
    assert url.startswith("https://kw.example/u/")
    token = url.rsplit("/", 1)[1]
    row = service.unsubscribe(db_session=db_session, token=token, settings=SETTINGS)
    assert (row.address, row.reason, row.source) == (
        "ana@example.com",
        "unsubscribed",
        f"message {message.id}",
    )
    service.unsubscribe(db_session=db_session, token=token, settings=SETTINGS)  # idempotent
    kinds = db_session.scalars(select(EmailEvent.kind)).all()
    assert kinds == ["unsubscribed"]
    timeline = db_session.scalars(
        select(TimelineEntry.kind).where(TimelineEntry.customer_id == customer.id)
    ).all()
    assert timeline == ["email_unsubscribed"]


def test_open_and_click_are_recorded(db_session: Session) -> None:
    message = queue(db_session)
    open_token = tokens.open_pixel_url(SETTINGS, message).rsplit("/", 1)[1]
    event = service.record_open(db_session=db_session, token=open_token, settings=SETTINGS)
    assert event.kind == "opened" and event.message_id == message.id
    link = tokens.click_url(SETTINGS, message, "https://shop.example/offer?x=1&y=2")
    target = service.resolve_click(
        db_session=db_session, token=link.rsplit("/", 1)[1], settings=SETTINGS
    )
    assert target == "https://shop.example/offer?x=1&y=2"
    clicks = db_session.scalars(select(EmailEvent).where(EmailEvent.kind == "clicked")).all()
    assert [c.url for c in clicks] == ["https://shop.example/offer?x=1&y=2"]


def _tamper(token: str) -> str:
    body, sig = token.rsplit(".", 1)
    return f"{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"


def test_tampered_and_foreign_tokens_are_rejected(db_session: Session) -> None:
    message = queue(db_session)
    unsub = tokens.unsubscribe_url(SETTINGS, message).rsplit("/", 1)[1]
    click = tokens.click_url(SETTINGS, message, "https://shop.example/").rsplit("/", 1)[1]
    other_key = Settings(secret_key="another-install", base_url="https://kw.example")
    foreign = tokens.unsubscribe_url(other_key, message).rsplit("/", 1)[1]
    cases = [
        (service.unsubscribe, _tamper(unsub)),
        (service.unsubscribe, foreign),  # signed with another key
        (service.unsubscribe, click),  # a click token is not an unsubscribe token
        (service.record_open, unsub),
        (service.resolve_click, _tamper(click)),
        (service.resolve_click, ""),
        (service.resolve_click, "x" * 5000),
    ]
    for func, token in cases:
        with pytest.raises(InvalidInput, match="not valid"):
            func(db_session=db_session, token=token, settings=SETTINGS)
    assert db_session.scalars(select(EmailSuppression)).all() == []
    assert db_session.scalars(select(EmailEvent)).all() == []


def test_click_redirect_only_goes_to_the_signed_url(db_session: Session) -> None:
    """No open redirect: changing the URL inside the token breaks the signature."""
    import base64
    import json

    message = queue(db_session)
    token = tokens.click_url(SETTINGS, message, "https://shop.example/").rsplit("/", 1)[1]
    body, sig = token.rsplit(".", 1)
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["u"] = "https://evil.example/phish"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput):
        service.resolve_click(db_session=db_session, token=f"{forged}.{sig}", settings=SETTINGS)
    for bad in ["javascript:alert(1)", "//evil.example/", "/relative", "ftp://x.example/"]:
        with pytest.raises(InvalidInput, match="http"):
            tokens.click_url(SETTINGS, message, bad)


def test_track_links_rewrites_anchors_and_adds_the_pixel() -> None:
    message = EmailMessage(id=5, to_address="ana@example.com")
    html = (
        "<!DOCTYPE html><html><body><p class=lead>Hi &amp; welcome &#169;</p>"
        '<a href="https://shop.example/?a=1&amp;b=2" title="Shop">Shop</a>'
        '<a href="mailto:help@kw.example">Mail</a><a href="#top">Top</a>'
        "<!-- note --><br/></body></html>"
    )
    out = track_links(html, settings=SETTINGS, message=message)
    click = tokens.click_url(SETTINGS, message, "https://shop.example/?a=1&b=2")
    pixel = tokens.open_pixel_url(SETTINGS, message)
    assert out == (
        "<!DOCTYPE html><html><body><p class=lead>Hi &amp; welcome &#169;</p>"
        f'<a href="{click}" title="Shop">Shop</a>'
        '<a href="mailto:help@kw.example">Mail</a><a href="#top">Top</a>'
        f'<!-- note --><br/><img src="{pixel}" width="1" height="1" alt="" '
        'style="display:none"></body></html>'
    )


def test_track_links_without_body_appends_the_pixel_and_keeps_text() -> None:
    message = EmailMessage(id=6, to_address="ana@example.com")
    out = track_links("<p>No links, <b>bold</b></p>", settings=SETTINGS, message=message)
    assert out.startswith("<p>No links, <b>bold</b></p><img src=")
    assert track_links("<p>x</p>", settings=SETTINGS, message=message, pixel=False) == "<p>x</p>"


def test_track_links_leaves_hostile_or_odd_links_alone() -> None:
    message = EmailMessage(id=8, to_address="ana@example.com")
    html = (
        '<a href="javascript:alert(1)">x</a><a href=" https://ok.example/a?q=&quot;1&quot; ">y</a>'
        "<a name=top>z</a><A HREF='http://shout.example/'>w</A>"
    )
    out = track_links(html, settings=SETTINGS, message=message, pixel=False)
    assert '<a href="javascript:alert(1)">x</a>' in out
    assert "<a name=top>z</a>" in out
    assert tokens.click_url(SETTINGS, message, 'https://ok.example/a?q="1"') in out
    assert tokens.click_url(SETTINGS, message, "http://shout.example/") in out
    assert "http://shout.example/" not in out and "https://ok.example" not in out


def test_unsubscribe_still_works_after_the_message_is_gone(db_session: Session) -> None:
    message = queue(db_session)
    token = tokens.unsubscribe_url(SETTINGS, message).rsplit("/", 1)[1]
    db_session.delete(message)
    db_session.flush()
    row = service.unsubscribe(db_session=db_session, token=token, settings=SETTINGS)
    assert row.address == "ana@example.com"
    assert service.record_open(
        db_session=db_session,
        token=tokens.open_pixel_url(SETTINGS, message).rsplit("/", 1)[1],
        settings=SETTINGS,
    ) is None  # fmt: skip
