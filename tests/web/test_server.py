"""``keepwell.web.server``: the automation scheduler runs inside the server (SQLite temp home)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from pydantic import ValidationError
from sqlalchemy import func, select

from keepwell import migrate
from keepwell.automation import service as automation
from keepwell.automation.models import AlertFiring
from keepwell.automation.scheduler import run_scheduler
from keepwell.billing.models import InvoiceStatus
from keepwell.config import Settings
from keepwell.customers.models import Customer
from keepwell.db import make_engine, session_scope
from keepwell.models import utcnow
from keepwell.web.server import build_app
from tests.factories import make_customer, make_invoice
from tests.web.conftest import free_port


def _home(tmp_path: Path, interval: int, warm: int = 0) -> Settings:
    """A migrated temp home with a failed payment and a rule that tags its customer."""
    settings = Settings(
        home=tmp_path / "home",
        secret_key="server-test-" + "k" * 32,
        automation_interval_seconds=interval,
        warm_interval_seconds=warm,
    )
    settings.home.mkdir()
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    with session_scope(engine) as db_session:
        customer = make_customer(db_session, external_id="late")
        make_invoice(
            db_session,
            customer,
            external_id="in_late",
            issued_at=utcnow() - timedelta(hours=1),
            status=InvoiceStatus.failed,
        )
        automation.create_rule(
            db_session=db_session,
            definition={
                "name": "Failed",
                "trigger": "payment_failed",
                "actions": [{"type": "add_tag", "tag": "dunning"}],
            },
        )
    engine.dispose()
    return settings


def _state(settings: Settings) -> tuple[int, list[str]]:
    """(firings, the customer's tags)."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as db_session:
            firings = db_session.scalar(select(func.count()).select_from(AlertFiring))
            customer = db_session.scalars(select(Customer)).one()
            return firings, sorted(t.name for t in customer.tags)
    finally:
        engine.dispose()


def _serve(settings: Settings):
    app = build_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return app, server, thread


def test_the_server_runs_automation_and_stops_it(tmp_path: Path) -> None:
    settings = _home(tmp_path, interval=1)
    app, server, thread = _serve(settings)
    scheduler = app.state.automation_thread
    deadline = time.monotonic() + 20
    while _state(settings) != (1, ["dunning"]):
        assert time.monotonic() < deadline, f"no automation run: {_state(settings)}"
        time.sleep(0.1)
    time.sleep(1.5)  # another run or two: each occurrence still fires once
    server.should_exit = True
    thread.join(timeout=40)
    assert not thread.is_alive() and not scheduler.is_alive()
    assert app.state.automation_runs >= 1
    assert _state(settings) == (1, ["dunning"])


@pytest.mark.slow  # waits 1.5 s to see that nothing runs
def test_interval_zero_starts_no_scheduler(tmp_path: Path) -> None:
    settings = _home(tmp_path, interval=0)
    app, server, thread = _serve(settings)
    time.sleep(1.5)
    server.should_exit = True
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert not hasattr(app.state, "automation_thread")
    assert _state(settings) == (0, [])


def test_the_server_warms_the_dashboard_and_stops_the_warmer(tmp_path: Path) -> None:
    from keepwell.reports import cache

    settings = _home(tmp_path, interval=0, warm=1)
    app, server, thread = _serve(settings)
    warmer = app.state.warm_thread
    deadline = time.monotonic() + 120
    while not getattr(app.state, "warmed_versions", None):
        assert time.monotonic() < deadline, "the dashboard was never warmed"
        time.sleep(0.1)
    engine = make_engine(settings.resolved_database_url)
    try:
        version = cache.data_version(settings, engine)
    finally:
        engine.dispose()
    assert app.state.warmed_versions == [version]
    assert any((settings.home / "cache" / "metrics" / version).iterdir())
    server.should_exit = True
    thread.join(timeout=40)
    assert not thread.is_alive() and not warmer.is_alive()


def test_the_first_run_waits_one_interval(tmp_path: Path) -> None:
    settings = _home(tmp_path, interval=60)
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    assert run_scheduler(settings, 60, stop=stop, wait_first=True) == 0  # stopped while waiting
    assert _state(settings) == (0, [])
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    assert run_scheduler(settings, 60, stop=stop) == 1  # without wait_first: at once
    assert _state(settings) == (1, ["dunning"])


@pytest.mark.parametrize("value", [-1, "soon", 1.5])
@pytest.mark.parametrize("name", ["automation_interval_seconds", "warm_interval_seconds"])
def test_bad_interval_is_refused(tmp_path: Path, name: str, value) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(home=tmp_path, **{name: value})


@pytest.mark.parametrize("value", [-0.5, "later"])
def test_bad_dashboard_wait_is_refused(tmp_path: Path, value) -> None:
    with pytest.raises(ValidationError, match="dashboard_wait_seconds"):
        Settings(home=tmp_path, dashboard_wait_seconds=value)
