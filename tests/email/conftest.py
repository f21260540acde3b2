"""Fixtures for the e-mail tests: a real SMTP server and a migrated store the sender can open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from keepwell import migrate
from keepwell.config import Settings
from keepwell.db import make_engine
from tests.email.smtpd import Recorder, start_server


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    """(recorder, port) of an aiosmtpd server on 127.0.0.1 for one test."""
    recorder = Recorder()
    controller = start_server(recorder)
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


@pytest.fixture
def store(isolated_database_url: str) -> Iterator[Engine]:
    """A migrated, committed store (SQLite and PostgreSQL) that a sender process can open."""
    engine = make_engine(isolated_database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


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
