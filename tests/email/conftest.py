"""Fixtures for the e-mail tests: a real SMTP server and a migrated store the sender can open."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from keepwell import migrate
from keepwell.config import Settings
from keepwell.db import make_engine
from tests.conftest import PG_ADMIN_URL, _admin_engine
from tests.email.smtpd import Recorder, start_server

# Rows a test may commit; emptied after each test (children first).
TABLES = ("email_events", "email_suppressions", "email_messages", "timeline_entries", "customers")


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    """(recorder, port) of an aiosmtpd server on 127.0.0.1 for one test."""
    recorder = Recorder()
    controller = start_server(recorder)
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def email_store(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Engine]:
    """A migrated database of its own per backend, for tests whose data must be committed."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('email') / 'keepwell.db'}"
    else:
        name = f"keepwell_email_{uuid.uuid4().hex[:12]}"
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    if name is not None:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def store(email_store: Engine) -> Iterator[Engine]:
    """The committed store (SQLite and PostgreSQL) a sender process can open; emptied after."""
    yield email_store
    with email_store.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def mail_settings(store: Engine, smtp, tmp_path: Path) -> Settings:
    """Settings pointing at ``store`` and the test SMTP server."""
    _, port = smtp
    return Settings(
        home=tmp_path / "home",
        database_url=store.url.render_as_string(hide_password=False),
        smtp_port=port,
        secret_key="test-secret",
        base_url="https://kw.example",
        mail_from="Keepwell Team <team@kw.example>",
    )
