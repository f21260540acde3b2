"""Demo homes for the health, survival, CLV and lookalike tests, on SQLite or PostgreSQL.

``demo_settings(backend, ...)`` loads a small demo business into a fresh store (a SQLite file,
or a brand-new PostgreSQL database on the test server) and yields its :class:`Settings`; the
PostgreSQL database is dropped afterwards. Fixtures built on it are module- or package-scoped,
so each store is built once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from keepwell.config import Settings
from keepwell.demo.loader import load_demo
from tests.conftest import PG_ADMIN_URL, _admin_engine

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def demo_settings(
    backend: str,
    home: Path,
    *,
    business: str = "saas",
    customers: int = 300,
    months: int = 12,
    seed: int = 5,
) -> Iterator[Settings]:
    """Settings of a store holding the demo ``business`` (SQLite file or fresh PostgreSQL)."""
    if backend == "sqlite":
        settings = Settings(home=home)
        load_demo(settings, customers=customers, months=months, seed=seed, business=business)
        yield settings
        return
    admin = _admin_engine()
    name = f"keepwell_kw_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        settings = Settings(home=home, database_url=url)
        load_demo(settings, customers=customers, months=months, seed=seed, business=business)
        yield settings
    finally:
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
