"""Database engine and sessions for the operational store.

SQLite (the embedded default) runs in WAL mode with foreign keys on, so the CLI and the server
can work on one file side by side; PostgreSQL is used as configured. Services receive a
:class:`~sqlalchemy.orm.Session`, flush, and leave the commit to the outermost caller
(:func:`session_scope`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from keepwell.config import Settings
from keepwell.errors import StoreError


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy, not the driver, open transactions (so SAVEPOINTs nest correctly).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


WRITE_OPTION = "keepwell_write"
"""Execution option marking a connection that will write: on SQLite its transactions begin with
``BEGIN IMMEDIATE`` (see :func:`write_engine`); other databases ignore it."""


def write_engine(engine: Engine) -> Engine:
    """``engine`` for a unit of work that will write (same pool, same events).

    SQLite's plain ``BEGIN`` is deferred: a transaction that reads first holds a snapshot and,
    once another connection has committed, can no longer become a write transaction
    (SQLITE_BUSY_SNAPSHOT, "database is locked" at once: the busy timeout cannot help). Writers
    therefore take the write lock when they begin and queue for it under the busy timeout;
    readers stay deferred and, in WAL mode, are never blocked. PostgreSQL is unaffected.
    """
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_begin(conn) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL mode, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def engine_from_settings(settings: Settings) -> Engine:
    """The operational-store engine for these settings."""
    return make_engine(settings.resolved_database_url)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    session = make_sessionmaker(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def require_schema(engine: Engine) -> None:
    """Raise :class:`StoreError` unless migrations have created the schema."""
    try:
        tables = set(inspect(engine).get_table_names())
    except Exception as exc:  # driver errors differ per backend
        raise StoreError(
            f"cannot reach the database: {exc.__class__.__name__}",
            hint="check KEEPWELL_DATABASE_URL and that the server is running",
        ) from exc
    if "customers" not in tables:
        raise StoreError(
            "the database has no keepwell schema yet",
            hint="run `keepwell db upgrade` (or `keepwell demo` for sample data)",
        )
