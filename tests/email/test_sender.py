"""The sender against a real SMTP server (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update

from keepwell.config import Settings
from keepwell.db import session_scope
from keepwell.email import service
from keepwell.email.models import EmailEvent, EmailMessage
from keepwell.email.sender import MAX_ATTEMPTS, backoff, send_due, send_until_empty
from keepwell.email.tokens import unsubscribe_url
from keepwell.errors import InvalidInput
from keepwell.models import utcnow
from tests.email.smtpd import free_port
from tests.factories import make_customer


def queue_many(engine: Engine, count: int, *, kind: str = "campaign", prefix: str = "u") -> None:
    with session_scope(engine) as db:
        for i in range(count):
            service.queue_message(
                db_session=db,
                customer_id=None,
                to=f"{prefix}{i}@example.com",
                subject=f"Hello {prefix}{i}",
                html=f"<p>Hello <b>{prefix}{i}</b></p>",
                text=f"Hello {prefix}{i}",
                kind=kind,
            )


def queue_one(engine: Engine, to: str, *, subject: str = "s", kind: str = "campaign") -> None:
    with session_scope(engine) as db:
        service.queue_message(
            db_session=db, customer_id=None, to=to, subject=subject, html=None, text="t", kind=kind
        )


def states(engine: Engine) -> dict[str, str]:
    with session_scope(engine) as db:
        rows = db.execute(select(EmailMessage.to_address, EmailMessage.state)).all()
    return {address: state for address, state in rows}


def test_personalised_message_with_headers(store: Engine, smtp, mail_settings: Settings) -> None:
    recorder, _ = smtp
    with session_scope(store) as db:
        customer = make_customer(db, name="Zoë Müller")
        message = service.queue_message(
            db_session=db,
            customer_id=customer.id,
            to="zoe@example.com",
            subject="Grüße, Zoë",
            html="<p>Hallo <b>Zoë</b>, your plan renews on 1 December.</p>",
            text="Hallo Zoë, your plan renews on 1 December.",
            kind="campaign",
            headers={"Reply-To": "csm@kw.example"},
        )
        message_id = message.id
    report = send_due(mail_settings)
    assert (report.sent, report.attempted) == (1, 1)
    [got] = recorder.received
    assert got.mail_from == "team@kw.example" and got.rcpt_to == ["zoe@example.com"]
    mail = got.message
    assert mail["Subject"] == "Grüße, Zoë"
    assert mail["From"] == "Keepwell Team <team@kw.example>"
    assert mail["To"] == "zoe@example.com"
    assert mail["Reply-To"] == "csm@kw.example"
    assert mail.get_content_type() == "multipart/alternative"
    assert mail.get_body(("plain",)).get_content().strip() == (
        "Hallo Zoë, your plan renews on 1 December."
    )
    assert "<b>Zoë</b>" in mail.get_body(("html",)).get_content()
    with session_scope(store) as db:
        row = db.get(EmailMessage, message_id)
        assert (row.state, row.attempts, row.claimed_by) == ("sent", 1, None)
        assert row.sent_at is not None and row.smtp_response.startswith("250")
        assert mail["Message-ID"] == row.message_id
        assert row.message_id.endswith("@kw.example>")
        expected = unsubscribe_url(mail_settings, row)
    assert mail["List-Unsubscribe"] == f"<{expected}>"
    assert expected.startswith("https://kw.example/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Date"] is not None


def test_transactional_mail_has_no_unsubscribe_header(
    store: Engine, smtp, mail_settings: Settings
) -> None:
    recorder, _ = smtp
    queue_many(store, 1, kind="transactional")
    send_due(mail_settings)
    assert recorder.received[0].message["List-Unsubscribe"] is None


def test_throttle_and_concurrency(store: Engine, smtp, mail_settings: Settings) -> None:
    recorder, _ = smtp
    settings = mail_settings.model_copy(update={"send_rate": 20.0, "send_concurrency": 3})
    queue_many(store, 41)
    report = send_due(settings)
    assert report.sent == 41
    arrivals = sorted(item.at for item in recorder.received)
    measured = 40 / (arrivals[-1] - arrivals[0])  # 40 intervals between 41 arrivals
    # Never faster than the cap (up to arrival jitter); slower only by the machine's load.
    assert 20 * 0.6 <= measured <= 20 * 1.1, measured
    first_half = 20 / (arrivals[20] - arrivals[0])
    assert first_half <= 20 * 1.2, first_half  # no burst at the start either
    assert 1 < len(recorder.peers) <= 3  # persistent connections, at most send_concurrency


def test_limit_and_not_before(store: Engine, smtp, mail_settings: Settings) -> None:
    recorder, _ = smtp
    queue_many(store, 5)
    with session_scope(store) as db:
        service.queue_message(
            db_session=db,
            customer_id=None,
            to="later@example.com",
            subject="Later",
            html=None,
            text="Later",
            kind="journey",
            not_before=utcnow() + timedelta(days=1),
        )
    assert send_due(mail_settings, limit=2).sent == 2
    assert send_due(mail_settings).sent == 3
    assert "later@example.com" not in recorder.by_recipient()
    assert send_due(mail_settings, now=utcnow() + timedelta(days=2)).sent == 1
    assert recorder.received[-1].message.get_content_type() == "text/plain"


def test_temporary_failure_is_retried_with_backoff(
    store: Engine, smtp, mail_settings: Settings
) -> None:
    recorder, _ = smtp
    recorder.refuse["slow@example.com"] = ["451 4.3.0 Try again later"]
    queue_one(store, "slow@example.com")
    t0 = utcnow()
    report = send_due(mail_settings, now=t0)
    assert (report.sent, report.retried) == (0, 1)
    with session_scope(store) as db:
        row = db.scalars(select(EmailMessage)).one()
        assert (row.state, row.attempts) == ("queued", 1)
        assert row.next_attempt_at == t0 + backoff(1)
        assert row.last_error.startswith("451")
    assert send_due(mail_settings, now=t0 + timedelta(seconds=30)).attempted == 0  # not yet
    report = send_due(mail_settings, now=t0 + backoff(1))
    assert report.sent == 1
    assert recorder.by_recipient() == {"slow@example.com": 1}
    assert states(store) == {"slow@example.com": "sent"}


def test_attempts_are_capped(store: Engine, smtp, mail_settings: Settings) -> None:
    recorder, _ = smtp
    recorder.refuse["full@example.com"] = ["452 4.2.2 Mailbox full"] * (MAX_ATTEMPTS + 1)
    queue_one(store, "full@example.com", kind="alert")
    now = utcnow()
    for _ in range(MAX_ATTEMPTS):
        send_due(mail_settings, now=now)
        now += timedelta(days=1)
    with session_scope(store) as db:
        row = db.scalars(select(EmailMessage)).one()
        assert (row.state, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert send_due(mail_settings, now=now).attempted == 0
    assert recorder.received == []


def test_permanent_failure_bounces_and_suppresses(
    store: Engine, smtp, mail_settings: Settings
) -> None:
    recorder, _ = smtp
    recorder.refuse["gone@example.com"] = ["550 5.1.1 No such user"]
    queue_one(store, "gone@example.com", subject="First")
    queue_one(store, "gone@example.com", subject="Second")
    queue_many(store, 2)
    report = send_due(mail_settings, limit=1)
    assert (report.bounced, report.sent) == (1, 0)
    with session_scope(store) as db:
        assert service.is_suppressed(db_session=db, address="gone@example.com")
        rows = db.scalars(select(EmailMessage).order_by(EmailMessage.id)).all()
        assert [r.state for r in rows] == ["bounced", "suppressed", "queued", "queued"]
        assert rows[0].smtp_response.startswith("550")
        assert db.scalars(select(EmailEvent.kind)).all() == ["bounced"]
        [suppression] = service.suppressions(db_session=db)
        assert suppression.reason == "hard_bounce"
        again = service.queue_message(
            db_session=db, customer_id=None, to="gone@example.com", subject="3", html=None,
            text="x", kind="campaign",
        )  # fmt: skip
        assert again is None
    assert send_due(mail_settings).sent == 2
    assert "gone@example.com" not in recorder.by_recipient()


def test_suppressed_after_queueing_is_never_sent(
    store: Engine, smtp, mail_settings: Settings
) -> None:
    """Even a suppression written behind the service's back is honoured at send time."""
    recorder, _ = smtp
    queue_many(store, 3)
    from keepwell.email.models import EmailSuppression

    with session_scope(store) as db:
        db.add(EmailSuppression(address="u1@example.com", reason="complaint"))
    report = send_due(mail_settings)
    assert (report.sent, report.suppressed) == (2, 1)
    assert sorted(recorder.by_recipient()) == ["u0@example.com", "u2@example.com"]
    assert states(store)["u1@example.com"] == "suppressed"


def test_unreachable_server_leaves_messages_for_later(
    store: Engine, mail_settings: Settings
) -> None:
    settings = mail_settings.model_copy(update={"smtp_port": free_port(), "smtp_timeout": 2.0})
    queue_many(store, 3)
    report = send_due(settings)
    assert report.sent == 0 and report.retried == 3
    assert report.errors
    assert set(states(store).values()) == {"queued"}


def test_send_due_rejects_bad_arguments(mail_settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        send_due(mail_settings, limit=-1)
    with pytest.raises(InvalidInput, match="time zone"):
        send_due(mail_settings, now=utcnow().replace(tzinfo=None))


def test_foreign_stale_claim_is_not_resent(store: Engine, smtp, mail_settings: Settings) -> None:
    """A row left 'sending' by a sender whose sent-log is elsewhere: unknown, never resent."""
    recorder, _ = smtp
    queue_many(store, 2)
    with session_scope(store) as db:
        db.execute(
            update(EmailMessage)
            .where(EmailMessage.to_address == "u0@example.com")
            .values(
                state="sending",
                claimed_by="other-host-run",
                updated_at=utcnow() - timedelta(hours=2),
            )
        )
        db.execute(
            update(EmailMessage)
            .where(EmailMessage.to_address == "u1@example.com")
            .values(state="sending", claimed_by="live-run-elsewhere")
        )
    report = send_due(mail_settings)
    assert (report.recovered_unknown, report.sent) == (1, 0)
    assert states(store) == {"u0@example.com": "failed", "u1@example.com": "sending"}
    assert recorder.received == []


def test_until_empty_waits_for_retries(store: Engine, smtp, mail_settings: Settings) -> None:
    recorder, _ = smtp
    recorder.refuse["slow@example.com"] = ["421 4.7.0 Busy"]
    queue_one(store, "slow@example.com")
    waits: list[float] = []

    def fake_sleep(seconds: float) -> None:  # let the retry fall due at once
        waits.append(seconds)
        with session_scope(store) as db:
            db.execute(update(EmailMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))

    report = send_until_empty(mail_settings, sleep=fake_sleep)
    assert (report.sent, report.retried) == (1, 1)
    assert len(waits) == 1 and 0 < waits[0] <= 60
    assert recorder.by_recipient() == {"slow@example.com": 1}


def _logged(home) -> int:
    """Lines in the sender's sent-log(s): messages it knows the server accepted."""
    directory = home.resolve() / "email-sent-log"
    if not directory.exists():
        return 0
    return sum(path.read_text().count("\n") for path in directory.glob("*.log"))


def test_resume_after_the_sender_is_killed(store: Engine, smtp, mail_settings: Settings) -> None:
    """SIGKILL the sender process mid-campaign; the next run delivers the rest exactly once.

    SMTP leaves one gap no client can close: between the server accepting a message and the
    client hearing the 250 (see docs/email.md). The test server therefore holds every new
    RCPT once 80 messages are in, and the kill comes when no transaction is past RCPT and
    the sender has logged every accepted message; rows are then claimed, queued in memory
    and some possibly logged but not yet recorded in the database.
    """
    recorder, port = smtp
    recorder.hold_after = 80
    total = 240
    queue_many(store, total)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPWELL_")}
    env.update(
        KEEPWELL_HOME=str(mail_settings.home),
        KEEPWELL_DATABASE_URL=mail_settings.database_url,
        KEEPWELL_SMTP_PORT=str(port),
        KEEPWELL_SECRET_KEY="test-secret",
        KEEPWELL_SEND_RATE="200",
        KEEPWELL_SEND_CONCURRENCY="4",
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", "from keepwell.email.cli import app; app()", "send"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with recorder.lock:
            accepted, busy = len(recorder.received), recorder.in_flight
        if accepted >= 80 and busy == 0 and _logged(mail_settings.home) == accepted:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    delivered_before = len(recorder.received)
    assert 80 <= delivered_before < total
    left = states(store)
    assert "sending" in left.values()  # the kill left claimed rows behind
    recorder.release.set()

    report = send_due(mail_settings)
    assert report.recovered_sent + report.recovered_requeued > 0
    counts = recorder.by_recipient()
    assert len(counts) == total  # no loss
    assert max(counts.values()) == 1  # no duplicate
    assert set(states(store).values()) == {"sent"}
    already = sum(1 for state in left.values() if state == "sent")
    assert report.sent == total - already - report.recovered_sent
    assert not any((mail_settings.home / "email-sent-log").iterdir())


def test_recovery_reads_the_dead_senders_sent_log(
    store: Engine, smtp, mail_settings: Settings
) -> None:
    """Deterministic version of the kill test: the log decides sent vs. queued again."""
    from keepwell.email.journal import SentLog

    recorder, _ = smtp
    queue_many(store, 3)
    with session_scope(store) as db:
        ids = db.scalars(select(EmailMessage.id).order_by(EmailMessage.id)).all()
        db.execute(update(EmailMessage).values(state="sending", claimed_by="deadrun.1", attempts=1))
    directory = mail_settings.home.resolve() / "email-sent-log"
    dead = SentLog(directory, "deadrun")
    dead.sent(ids[0], utcnow())  # the server had accepted the first one
    dead.close(remove=False)  # the process died: lock released, file left behind
    live = SentLog(directory, "liverun")  # another sender, still running
    with session_scope(store) as db:
        third = update(EmailMessage).where(EmailMessage.id == ids[2])
        db.execute(third.values(claimed_by="liverun.1"))
    try:
        report = send_due(mail_settings)
    finally:
        live.close(remove=True)
    assert (report.recovered_sent, report.recovered_requeued, report.sent) == (1, 1, 1)
    assert recorder.by_recipient() == {"u1@example.com": 1}  # u0 not resent, u2 not touched
    assert states(store) == {
        "u0@example.com": "sent",
        "u1@example.com": "sent",
        "u2@example.com": "sending",
    }
    assert not (directory / "deadrun.log").exists()
