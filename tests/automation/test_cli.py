"""`keepwell rules`, `keepwell automation run` and `keepwell journeys` on real stores."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from keepwell import migrate
from keepwell.automation.models import AlertFiring
from keepwell.automation.scheduler import run_scheduler
from keepwell.billing.models import InvoiceStatus
from keepwell.cli import app
from keepwell.config import Settings
from keepwell.db import make_engine, session_scope
from keepwell.journeys.models import JourneyEnrollment
from tests.factories import make_customer, make_invoice

runner = CliRunner()


@pytest.fixture
def store(monkeypatch, tmp_path, isolated_database_url):
    """A migrated store with one failed invoice from yesterday; the CLI points at it."""
    from keepwell.models import utcnow

    engine = make_engine(isolated_database_url)
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        c = make_customer(s, external_id="c1", name="Acme")
        make_invoice(s, c, external_id="in_1", issued_at=utcnow(), status=InvoiceStatus.failed)
    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", isolated_database_url)
    monkeypatch.setenv("KEEPWELL_SECRET_KEY", "cli-test-secret-0123456789")
    monkeypatch.setenv("COLUMNS", "200")
    yield engine
    engine.dispose()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _firings(engine) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(AlertFiring))


def test_rules_lifecycle_and_run(store, tmp_path, receiver):
    path = tmp_path / "rule.yaml"
    path.write_text(
        "name: Payment failed\n"
        "trigger: {kind: payment_failed, within_days: 14}\n"
        "cooldown_days: 7\n"
        "actions:\n"
        f"  - {{type: webhook, url: '{receiver.url}', secret: 'a-receiver-secret-123'}}\n"
        "  - {type: add_tag, tag: payment-problem}\n"
    )
    assert "Created rule 'Payment failed'" in run("rules", "create", str(path))
    listed = run("rules", "list")
    assert "Payment failed" in listed and "payment_failed" in listed and "7 d" in listed
    shown = json.loads(run("rules", "show", "Payment failed"))
    assert shown["params"] == {"within_days": 14} and shown["actions"][0]["secret"] == "***"

    dry = run("automation", "run", "--dry-run")
    assert "1 alert(s) would fire" in dry and "Acme" in dry and "in_1" in dry
    assert _firings(store) == 0 and receiver.requests == []

    out = run("automation", "run")
    assert "1 alert(s) fired" in out and "done" in out
    again = run("automation", "run")
    assert "No alert fired." in again and "1 already fired" in again
    assert _firings(store) == 1 and len(receiver.requests) == 1

    history = run("rules", "history", "Payment failed")
    assert "webhook: done" in history and "add_tag: done" in history and "Acme (c1)" in history
    assert "disabled" in run("rules", "disable", "Payment failed")
    assert "enabled" in run("rules", "enable", "Payment failed")
    assert "Deleted rule" in run("rules", "delete", "Payment failed", "--yes")
    assert "No rules yet" in run("rules", "list")


@pytest.mark.slow  # a fresh database per test: seconds each on a busy machine
def test_rules_create_from_options_and_errors(store, tmp_path):
    out = run(
        "rules", "create", "--name", "Quiet", "--trigger", "no_activity",
        "--param", "days=21", "--task", "Call {{ customer.name }}", "--cooldown-days", "30",
    )  # fmt: skip
    assert "Created rule 'Quiet'" in out
    err = run(
        "rules",
        "create",
        "--name",
        "Bad",
        "--trigger",
        "no_activity",
        "--param",
        "days=0",
        "--tag",
        "x",
        code=1,
    )
    assert "field 'params.days'" in err
    err = run("rules", "create", "--name", "Bad", "--trigger", "usage_drop", "--tag", "x", code=1)
    assert "field 'params.percent': Field required" in err
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"name": "X", "trigger": "payment_failed", "actions": [{"type": "webhook"}]})
    )
    assert "field 'actions[0].url': Field required" in run("rules", "create", str(bad), code=1)
    bad.write_text("{not json")
    assert "not valid JSON" in run("rules", "create", str(bad), code=1)
    assert "no alert rule 'Nope'" in run("rules", "show", "Nope", code=1)
    assert "give a time zone" in run("automation", "run", "--now", "2026-03-01T00:00", code=1)
    dry = run("automation", "run", "--dry-run", "--rule", "Quiet", "--now", "2026-03-01T00:00Z")
    assert "No alert would fire." in dry  # no paying customer to be quiet


@pytest.mark.slow  # a fresh database per test: seconds each on a busy machine
def test_playbooks(store, tmp_path):
    path = tmp_path / "pb.json"
    path.write_text(
        json.dumps({"name": "Dunning", "actions": [{"type": "add_tag", "tag": "dunning"}]})
    )
    assert "Created playbook 'Dunning' with 1 action(s)" in run(
        "rules", "playbook-create", str(path)
    )
    assert "Dunning: add_tag" in run("rules", "playbooks")
    out = run(
        "rules", "create", "--name", "PF", "--trigger", "payment_failed", "--playbook", "Dunning"
    )
    assert "Created rule 'PF'" in out
    assert "1 alert(s) fired" in run("automation", "run")


def test_journeys_cli(store, tmp_path):
    out = run("journeys", "install-defaults")
    assert "Onboarding" in out and "Renewal in 30 days (disabled)" in out
    assert "already installed" in run("journeys", "install-defaults")
    listed = run("journeys", "list")
    assert "Win-back churned" in listed and "segment: Churned" in listed
    path = tmp_path / "j.yaml"
    path.write_text(
        "name: Nudge\nsteps:\n  - {kind: add_tag, tag: nudged}\n  - {kind: wait, days: 2}\n"
    )
    assert "Created journey 'Nudge' with 2 step(s)" in run("journeys", "create", str(path))
    assert "Enrolled customer c1" in run("journeys", "enrol", "Nudge", "c1")
    assert "Not enrolled" in run("journeys", "enrol", "Nudge", "c1")
    assert "no customer 'zz'" in run("journeys", "enrol", "Nudge", "zz", code=1)
    out = run("automation", "run")
    assert "Nudge / customer #" in out and "add_tag: done" in out
    show = run("journeys", "show", "Nudge")
    assert "0. add_tag" in show and "active" in show
    path.write_text("name: Bad\nsteps:\n  - {kind: wait}\n")
    assert "field 'steps[0]': a wait needs" in run("journeys", "create", str(path), code=1)


@pytest.mark.slow  # a fresh database per test: seconds each on a busy machine
def test_scheduler_runs_and_stops(store, receiver):
    import os

    settings = Settings(
        home=os.environ["KEEPWELL_HOME"],
        database_url=os.environ["KEEPWELL_DATABASE_URL"],
        secret_key="cli-test-secret-0123456789",
    )
    run("rules", "create", "--name", "PF", "--trigger", "payment_failed", "--webhook", receiver.url)
    assert run_scheduler(settings, 0.01, max_runs=3) == 3
    assert len(receiver.requests) == 1 and _firings(store) == 1
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(settings, 0.05), kwargs={"stop": stop})
    thread.start()
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    with session_scope(store) as s:
        assert s.scalar(select(func.count()).select_from(JourneyEnrollment)) == 0


@pytest.mark.slow  # a fresh database and two connections
def test_two_racing_runs_fire_once(store, receiver):
    """A run that starts before another commits never fires the same occurrence again."""
    import os

    from sqlalchemy.exc import OperationalError

    from keepwell.automation import service

    settings = Settings(
        home=os.environ["KEEPWELL_HOME"],
        database_url=os.environ["KEEPWELL_DATABASE_URL"],
        secret_key="cli-test-secret-0123456789",
    )
    run("rules", "create", "--name", "PF", "--trigger", "payment_failed", "--webhook", receiver.url)
    outcome: dict[str, object] = {}

    def second_run() -> None:
        try:
            with session_scope(store) as s:
                outcome["report"] = service.run(db_session=s, settings=settings)
        except OperationalError as exc:  # SQLite: the writer's lock is held; nothing written
            outcome["error"] = exc

    with session_scope(store) as first:
        report = service.run(db_session=first, settings=settings)
        assert report.fired == 1
        thread = threading.Thread(target=second_run)
        thread.start()
        thread.join(timeout=1)  # PostgreSQL: blocks on the unique key until we commit
    thread.join(timeout=60)
    assert not thread.is_alive()
    if store.dialect.name == "postgresql":  # waited, then met the unique key: skipped
        assert (outcome["report"].fired, outcome["report"].skipped_duplicate) == (0, 1)
    else:  # SQLite has one writer: the second run fails and writes nothing
        assert "database is locked" in str(outcome["error"])
    assert _firings(store) == 1 and len(receiver.requests) == 1
