"""Shared fixtures: settings isolated from the host, databases on SQLite *and* PostgreSQL.

Every test that asks for ``engine`` or ``db_session`` runs twice: once on a SQLite file and once
on a fresh database on the PostgreSQL server at ``KEEPWELL_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). Each test's session rolls back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from keepwell import migrate
from keepwell.config import Settings
from keepwell.db import make_engine

# CLI tests read Rich tables: give them room whatever terminal (or none) runs the tests
os.environ["COLUMNS"] = "200"

PG_ADMIN_URL = os.environ.get(
    "KEEPWELL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Host ``KEEPWELL_*`` variables never leak into a test."""
    for name in list(os.environ):
        if name.startswith("KEEPWELL_") and name != "KEEPWELL_TEST_PG_URL":
            monkeypatch.delenv(name)


def _admin_engine() -> Engine:
    url = make_url(PG_ADMIN_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (dropped at the end)."""
    admin = _admin_engine()
    name = f"keepwell_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, say so loudly
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    url = make_url(PG_ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
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


def database_url_for(backend: str, request: pytest.FixtureRequest, tmp_dir: Path) -> str:
    """URL of a fresh, migrated database of ``backend`` ('sqlite' or 'postgresql')."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / 'keepwell.db'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A migrated engine, once per backend per test session."""
    url = database_url_for(request.param, request, tmp_path_factory.mktemp("sqlite"))
    eng = make_engine(url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test.

    Service code may commit or roll back freely: those act on a savepoint.
    """
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def backend(engine: Engine) -> str:
    """'sqlite' or 'postgresql': which database this run of the test uses."""
    return engine.dialect.name


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an isolated keepwell home on SQLite (CLI and end-to-end tests)."""
    return Settings(home=tmp_path / "home")


@pytest.fixture(params=["sqlite", "postgresql"])
def isolated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new, *unmigrated* database for one test (for CLI and cross-process tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'isolated.db'}"
        return
    admin = _admin_engine()
    name = f"keepwell_iso_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
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
