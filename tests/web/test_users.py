"""Users service (SQLite and PostgreSQL) and the `keepwell users` / `tokens` / `serve` CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from keepwell import migrate
from keepwell.cli import app as cli
from keepwell.db import make_engine
from keepwell.errors import AlreadyExists, InvalidInput, NotFound, StoreError
from keepwell.users import service
from keepwell.users.models import LoginAttempt, Role
from keepwell.web.cli import prepare_database
from tests.factories import at

runner = CliRunner()
PASSWORD = "a long enough password"


def test_create_and_authenticate(db_session: Session) -> None:
    user = service.create(
        db_session=db_session,
        email=" Ana@Example.COM ",
        name="Ana",
        role="manager",
        password=PASSWORD,
    )
    assert user.email == "ana@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    found = service.authenticate(
        db_session=db_session, email="ANA@example.com", password=PASSWORD, ip="1.2.3.4"
    )
    assert found is user
    assert user.last_login_at is not None
    wrong = service.authenticate(
        db_session=db_session, email="ana@example.com", password="nope", ip="1.2.3.4"
    )
    assert wrong is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"email": "not-an-email", "name": "A"}, "email"),
        ({"email": "a@b.c", "name": " "}, "name"),
        ({"email": "a@b.c", "name": "A", "role": "owner"}, "role"),
        ({"email": "a@b.c", "name": "A", "password": "short"}, "password"),
    ],
)
def test_create_refuses_bad_input(db_session: Session, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.create(db_session=db_session, **kwargs)
    assert caught.value.field == field


def test_create_refuses_a_taken_email(db_session: Session) -> None:
    service.create(db_session=db_session, email="bo@example.com", name="Bo")
    with pytest.raises(AlreadyExists):
        service.create(db_session=db_session, email="BO@example.com", name="Bo 2")


def test_rate_limit_counts_failures_in_the_window(db_session: Session) -> None:
    service.create(db_session=db_session, email="cy@example.com", name="Cy", password=PASSWORD)
    t0 = at(2026, 5, 1, 12)
    for n in range(service.MAX_FAILURES_PER_ACCOUNT):
        service.authenticate(
            db_session=db_session, email="cy@example.com", password="x", ip=f"10.0.0.{n}", now=t0
        )
    with pytest.raises(service.LoginThrottled):
        service.authenticate(
            db_session=db_session, email="cy@example.com", password=PASSWORD, ip="10.9.9.9", now=t0
        )
    later = t0 + service.LOGIN_WINDOW + timedelta(seconds=1)
    assert db_session.scalar(select(func.count(LoginAttempt.id))) == 5
    user = service.authenticate(
        db_session=db_session, email="cy@example.com", password=PASSWORD, ip="10.9.9.9", now=later
    )
    assert user is not None
    next_day = later + service.KEEP_ATTEMPTS + timedelta(seconds=1)
    service.authenticate(
        db_session=db_session, email="cy@example.com", password=PASSWORD, ip="1.1.1.1", now=next_day
    )
    assert db_session.scalar(select(func.count(LoginAttempt.id))) == 1  # old attempts pruned


def test_tokens_scopes_and_revocation(db_session: Session) -> None:
    service.create(db_session=db_session, email="vi@example.com", name="Vi", role=Role.viewer)
    with pytest.raises(InvalidInput, match="cannot hold"):
        service.create_token(
            db_session=db_session, email="vi@example.com", name="t", scopes=["write"]
        )
    with pytest.raises(InvalidInput, match="bad scope"):
        service.create_token(
            db_session=db_session, email="vi@example.com", name="t", scopes=["root"]
        )
    with pytest.raises(NotFound):
        service.create_token(db_session=db_session, email="nobody@example.com", name="t")
    token, secret = service.create_token(db_session=db_session, email="vi@example.com", name="t")
    assert secret.startswith("kw_") and len(secret) > 40
    assert secret not in token.token_hash
    principal = service.authenticate_token(db_session=db_session, secret=secret)
    assert principal is not None
    assert principal.scopes == frozenset({"read"})
    assert token.last_used_at is not None
    assert service.authenticate_token(db_session=db_session, secret=secret + "x") is None
    service.revoke_token(db_session=db_session, token_id=token.id)
    assert service.authenticate_token(db_session=db_session, secret=secret) is None
    assert token not in service.list_tokens(db_session=db_session)
    assert token in service.list_tokens(db_session=db_session, include_revoked=True)
    with pytest.raises(NotFound):
        service.revoke_token(db_session=db_session, token_id=10**9)


@pytest.fixture
def cli_env(monkeypatch, isolated_database_url, tmp_path):
    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", isolated_database_url)
    monkeypatch.setenv("COLUMNS", "200")
    engine = make_engine(isolated_database_url)
    migrate.upgrade(engine)
    engine.dispose()
    return isolated_database_url


def test_users_and_tokens_cli(cli_env) -> None:
    made = runner.invoke(
        cli,
        [
            "users",
            "create",
            "--email",
            "ad@example.com",
            "--name",
            "Ad",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
    )
    assert made.exit_code == 0, made.output
    assert "Created admin ad@example.com" in made.output
    prompted = runner.invoke(
        cli,
        ["users", "create", "--email", "ce@example.com", "--name", "Ce"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert prompted.exit_code == 0, prompted.output
    again = runner.invoke(
        cli,
        ["users", "create", "--email", "ad@example.com", "--name", "X", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert again.exit_code == 1 and "exists already" in again.output
    short = runner.invoke(
        cli,
        ["users", "create", "--email", "x@example.com", "--name", "X", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1 and "field 'password'" in short.output
    assert runner.invoke(cli, ["users", "set-role", "ce@example.com", "viewer"]).exit_code == 0
    assert runner.invoke(cli, ["users", "disable", "ce@example.com"]).exit_code == 0
    reset = runner.invoke(
        cli,
        ["users", "reset-password", "ad@example.com", "--password-stdin"],
        input="another long password\n",
    )
    assert reset.exit_code == 0, reset.output
    listed = runner.invoke(cli, ["users", "list"])
    assert "ad@example.com" in listed.output and "viewer" in listed.output
    assert runner.invoke(cli, ["users", "disable", "zz@example.com"]).exit_code == 1

    token = runner.invoke(
        cli,
        [
            "tokens",
            "create",
            "--email",
            "ad@example.com",
            "--name",
            "sync",
            "--scope",
            "read",
            "--scope",
            "write",
        ],
    )
    assert token.exit_code == 0, token.output
    secret = next(line for line in token.output.splitlines() if line.startswith("kw_"))
    tokens = runner.invoke(cli, ["tokens", "list"])
    assert "sync" in tokens.output and secret not in tokens.output
    assert runner.invoke(cli, ["tokens", "revoke", "1"]).exit_code == 0
    assert "sync" not in runner.invoke(cli, ["tokens", "list"]).output
    assert "revoked" in runner.invoke(cli, ["tokens", "list", "--all"]).output
    assert runner.invoke(cli, ["tokens", "revoke", "99"]).exit_code == 1


def test_serve_prepares_an_empty_database_and_refuses_an_old_one(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        assert "created the database schema" in prepare_database(engine)
        assert "up to date" in prepare_database(engine)
        migrate.downgrade(engine, "0008_auth-1")
        with pytest.raises(StoreError, match="keepwell needs"):
            prepare_database(engine)
    finally:
        engine.dispose()


def test_token_use_survives_a_write_by_another_sqlite_connection(tmp_path) -> None:
    """SQLite cannot turn a read transaction into a write one after another connection wrote
    ("database is locked" at once); the last-used stamp is skipped, the token still works."""
    from sqlalchemy import text

    from keepwell.users.models import ApiToken

    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    migrate.upgrade(engine)
    with Session(engine) as setup:
        service.create(db_session=setup, email="t@example.com", name="T", role=Role.admin)
        _, secret = service.create_token(
            db_session=setup, email="t@example.com", name="sync", scopes=("read",)
        )
        setup.commit()
    with Session(engine) as request_session:
        request_session.execute(select(ApiToken.id)).all()  # the request's read snapshot
        with engine.begin() as other:  # another request writes meanwhile
            other.execute(text("UPDATE staff_users SET name = 'T2'"))
        principal = service.authenticate_token(db_session=request_session, secret=secret)
        assert principal is not None and principal.user.email == "t@example.com"
        assert "read" in principal.scopes
    engine.dispose()
