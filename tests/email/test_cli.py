"""`keepwell email ...` through Typer's runner, against a real SMTP server."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from keepwell.config import Settings
from keepwell.db import session_scope
from keepwell.email import service
from keepwell.email.cli import app
from keepwell.email.models import EmailMessage

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mail_settings: Settings) -> Settings:
    monkeypatch.setenv("KEEPWELL_HOME", str(mail_settings.home))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", mail_settings.database_url)
    monkeypatch.setenv("KEEPWELL_SMTP_PORT", str(mail_settings.smtp_port))
    monkeypatch.setenv("KEEPWELL_SECRET_KEY", "test-secret")
    monkeypatch.setenv("COLUMNS", "200")
    return mail_settings


def test_send_and_status(env: Settings, store: Engine, smtp) -> None:
    recorder, _ = smtp
    with session_scope(store) as db:
        for i in range(3):
            service.queue_message(
                db_session=db, customer_id=None, to=f"c{i}@example.com", subject="Hi",
                html="<p>Hi</p>", text="Hi", kind="campaign",
            )  # fmt: skip
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    assert "queued" in status.output and "Next due" in status.output
    sent = runner.invoke(app, ["send", "--limit", "2"])
    assert sent.exit_code == 0, sent.output
    assert "Sent 2 " in sent.output
    rest = runner.invoke(app, ["send", "--until-empty"])
    assert rest.exit_code == 0, rest.output
    assert "Sent 1 " in rest.output
    assert len(recorder.received) == 3
    rows = [line.split() for line in runner.invoke(app, ["status"]).output.splitlines()]
    counts = {row[0]: row[1] for row in rows if len(row) == 2 and row[0] in ("queued", "sent")}
    assert counts == {"queued": "0", "sent": "3"}


def test_suppress_list_and_unsuppress(env: Settings) -> None:
    done = runner.invoke(app, ["suppress", "Bob@Example.com", "--reason", "complaint"])
    assert done.exit_code == 0, done.output
    assert "Suppressed bob@example.com (complaint)" in done.output
    listed = runner.invoke(app, ["suppressions"])
    assert "bob@example.com" in listed.output and "complaint" in listed.output
    only = runner.invoke(app, ["suppressions", "--reason", "hard_bounce"])
    assert "No suppressed addresses." in only.output
    back = runner.invoke(app, ["unsuppress", "bob@example.com"])
    assert "may receive e-mail again" in back.output
    again = runner.invoke(app, ["unsuppress", "bob@example.com"])
    assert "was not suppressed" in again.output


def test_bad_input_exits_with_one_line(env: Settings) -> None:
    bad = runner.invoke(app, ["suppress", "not-an-address"])
    assert bad.exit_code == 1
    assert "not an e-mail address" in bad.output
    reason = runner.invoke(app, ["suppress", "a@example.com", "--reason", "bored"])
    assert reason.exit_code == 2
    both = runner.invoke(app, ["send", "--limit", "1", "--until-empty"])
    assert both.exit_code == 1 and "either --limit or --until-empty" in both.output
    zero = runner.invoke(app, ["send", "--limit", "0"])
    assert zero.exit_code == 2


def test_test_command_sends_one_message(env: Settings, store: Engine, smtp) -> None:
    recorder, _ = smtp
    with session_scope(store) as db:
        service.queue_message(
            db_session=db, customer_id=None, to="other@example.com", subject="Queued",
            html=None, text="x", kind="campaign",
        )  # fmt: skip
    result = runner.invoke(app, ["test", "--to", "me@example.com"])
    assert result.exit_code == 0, result.output
    assert "Sent a test message to me@example.com" in result.output
    assert [r.rcpt_to for r in recorder.received] == [["me@example.com"]]  # only the test
    assert recorder.received[0].message["List-Unsubscribe"] is None  # transactional
    refused = runner.invoke(app, ["test", "--to", "x@example.com"])
    assert refused.exit_code == 0
    recorder.refuse["no@example.com"] = ["550 5.1.1 unknown user"]
    failed = runner.invoke(app, ["test", "--to", "no@example.com"])
    assert failed.exit_code == 1 and "was not sent: 550" in failed.output
    with session_scope(store) as db:
        subjects = db.scalars(select(EmailMessage.state).order_by(EmailMessage.id)).all()
    assert subjects == ["queued", "sent", "sent", "bounced"]


def test_commands_need_a_migrated_store(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "empty"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1 and "no keepwell schema" in result.output
