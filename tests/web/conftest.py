"""A live keepwell server (uvicorn in a thread, on a free loopback port) and staff accounts.

One server per test session on a SQLite home; ``live.client(role)`` gives an httpx client
authenticated with that role's API token; ``live.browser()`` a cookie-keeping client for the
login form. Tests make their own data with unique ids, so they do not depend on each other.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from keepwell import migrate
from keepwell.config import Settings
from keepwell.db import make_engine, session_scope
from keepwell.users import service as users_service
from keepwell.web.app import create_app

PASSWORD = "correct horse battery"
WEBHOOK_SECRET = "whsec_test_secret"
ROLES = ("admin", "manager", "csm", "viewer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Live:
    url: str
    settings: Settings
    engine: Engine
    tokens: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = "admin", **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, follow_redirects=False)


def start_server(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Run keepwell's app with uvicorn in a daemon thread; returns when it accepts requests."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def make_staff(engine: Engine, live: Live, suffix: str = "") -> None:
    with session_scope(engine) as db_session:
        for role in ROLES:
            email = f"{role}{suffix}@example.com"
            users_service.create(
                db_session=db_session, email=email, name=role.title(), role=role, password=PASSWORD
            )
            scopes = sorted(users_service.ROLE_SCOPES[users_service.Role(role)])
            _, secret = users_service.create_token(
                db_session=db_session, email=email, name=f"{role} token", scopes=scopes
            )
            live.tokens[role] = secret
            live.emails[role] = email


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home: Path = tmp_path_factory.mktemp("web-home")
    settings = Settings(
        home=home,
        secret_key="test-secret-" + uuid.uuid4().hex,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    server, thread, url = start_server(settings)
    state = Live(url=url, settings=settings, engine=engine)
    make_staff(engine, state)
    yield state
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def unique(prefix: str = "cus") -> str:
    """A fresh external id."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
