"""Staff users for task, deal and note tests."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from keepwell.users.models import Role, StaffUser

_seq = itertools.count(1)


def make_staff(db_session: Session, name: str | None = None, **overrides) -> StaffUser:
    n = next(_seq)
    name = name or f"Staff {n}"
    values = {
        "email": f"{name.lower().replace(' ', '.')}.{n}@example.com",
        "name": name,
        "role": Role.csm,
    }
    values.update(overrides)
    user = StaffUser(**values)
    db_session.add(user)
    db_session.flush()
    return user


def migrated_home(monkeypatch, tmp_path, database_url: str) -> str:
    """Point the CLI at a fresh, migrated database (and a wide terminal); returns the URL."""
    from keepwell import migrate
    from keepwell.db import make_engine

    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return database_url


def seeded(database_url: str):
    """A committed session on ``database_url`` (``with seeded(url) as s: ...``)."""
    from contextlib import contextmanager

    from keepwell.db import make_engine, session_scope

    @contextmanager
    def scope():
        engine = make_engine(database_url)
        try:
            with session_scope(engine) as session:
                yield session
        finally:
            engine.dispose()

    return scope()
