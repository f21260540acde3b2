"""Concurrent writes over real HTTP on the embedded SQLite store.

With a plain deferred ``BEGIN`` a request that reads first and writes later cannot upgrade its
read transaction once another connection has committed (SQLITE_BUSY_SNAPSHOT: "database is
locked" at once, whatever the busy timeout), so concurrent writers got 500s. Write requests now
begin with ``BEGIN IMMEDIATE`` and wait their turn; reads stay deferred.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from keepwell.db import WRITE_OPTION, make_engine, write_engine
from keepwell.users.models import ApiToken
from tests.web.conftest import PASSWORD, Live, unique

CLIENTS = 8
WRITES = 20


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def _logged_in(live: Live) -> httpx.Client:
    browser = live.browser()
    token = _csrf(browser.get("/login").text)
    answer = browser.post(
        "/login",
        data={"email": live.emails["admin"], "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 303, answer.text
    return browser


def _hammer(live: Live, customers: list[str]) -> tuple[Counter, list[str]]:
    """CLIENTS clients at once, each WRITES writes: even clients use the API token on
    customers[0] (the same customer for all), odd ones alternate API and page (cookie + CSRF)
    writes on their own customer. Returns the status counts and the bodies of failures."""
    statuses: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS, timeout=120)

    browsers = {n: _logged_in(live) for n in range(1, CLIENTS, 2)}  # one at a time

    def worker(n: int) -> None:
        api = live.client("admin")
        browser = browsers.get(n)
        try:
            if browser is not None:
                csrf = _csrf(browser.get(f"/customers/{customers[n]}").text)
            ext = customers[0] if n % 2 == 0 else customers[n]
            start.wait()
            for i in range(WRITES):
                if browser is not None and i % 2:
                    answer = browser.post(
                        f"/customers/{ext}/notes",
                        data={"csrf_token": csrf, "body": f"page note {n}-{i}"},
                    )
                elif i % 4 == 2:
                    answer = api.put(f"/v1/customers/{ext}/tags/t{n}-{i}")
                else:
                    answer = api.post(f"/v1/customers/{ext}/notes", json={"body": f"{n}-{i}"})
                with lock:
                    statuses[answer.status_code] += 1
                    if answer.status_code >= 400:
                        failures.append(f"{answer.status_code} {answer.text[:300]}")
        except Exception as exc:  # a failed login or page: report it, release the others
            start.abort()
            with lock:
                failures.append(f"client {n}: {exc!r}"[:400])
        finally:
            api.close()
            if browser is not None:
                browser.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return statuses, failures


def test_concurrent_note_and_tag_writes_never_fail(live: Live) -> None:
    customers = [unique("conc") for _ in range(CLIENTS)]
    with live.client("admin") as api:
        for ext in customers:
            api.post("/v1/customers", json={"external_id": ext, "name": ext}).raise_for_status()

    statuses, failures = _hammer(live, customers)

    assert failures == [], f"{len(failures)} failed writes, e.g. {failures[:3]}"
    assert sum(statuses.values()) == CLIENTS * WRITES
    # every write landed: count notes and tags per customer (hand-computed from _hammer)
    with live.client("admin") as api:
        shared = api.get(f"/v1/customers/{customers[0]}/notes", params={"limit": 500}).json()
        # 4 even clients x 20 writes, of which i % 4 == 2 (5 per client) are tags
        assert len(shared) == 4 * 15
        assert len(api.get(f"/v1/customers/{customers[0]}").json()["tags"]) == 4 * 5
        for n in range(1, CLIENTS, 2):
            notes = api.get(f"/v1/customers/{customers[n]}/notes", params={"limit": 500}).json()
            # 10 page notes (odd i) + API writes on even i: i % 4 == 0 notes (5), == 2 tags (5)
            assert sorted(x["body"] for x in notes if x["body"].startswith("page")) == sorted(
                f"page note {n}-{i}" for i in range(1, WRITES, 2)
            )
            assert len(notes) == 10 + 5
            assert len(api.get(f"/v1/customers/{customers[n]}").json()["tags"]) == 5


def test_token_last_used_is_stamped_on_reads_and_on_contended_writes(live: Live) -> None:
    """The API token's ``last_used_at`` (written at most once a minute) is recorded by a GET
    and, now that writes begin IMMEDIATE, also by a POST racing other writers."""
    token_id = _token_id(live)

    def reset() -> None:
        with live.engine.begin() as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=None))

    def stamp() -> datetime | None:
        with Session(live.engine) as s:
            return s.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))

    reset()
    with live.client("manager") as api:
        assert api.get("/v1/customers", params={"limit": 1}).status_code == 200
    assert stamp() is not None

    ext = unique("stamp")
    with live.client("admin") as admin:
        admin.post("/v1/customers", json={"external_id": ext, "name": ext}).raise_for_status()
    reset()
    errors: list[int] = []
    go = threading.Barrier(4, timeout=120)

    def writer() -> None:
        with live.client("manager") as api:
            go.wait()
            for i in range(5):
                answer = api.post(f"/v1/customers/{ext}/notes", json={"body": str(i)})
                if answer.status_code != 201:
                    errors.append(answer.status_code)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert stamp() is not None


def _token_id(live: Live) -> int:
    prefix = live.tokens["manager"]
    with Session(live.engine) as s:
        for token in s.scalars(select(ApiToken)):
            if token.created_by.email == live.emails["manager"]:
                return token.id
    raise AssertionError(f"no token for {prefix[:6]}")


# -- the mechanism, on one SQLite file ---------------------------------------------------------


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def test_deferred_reader_cannot_upgrade_after_another_commit(sqlite_engine) -> None:
    """Why: the plain deferred BEGIN fails at once (the condition the web app used to hit)."""
    from sqlalchemy.exc import OperationalError

    with sqlite_engine.connect() as reader:
        reader.execute(text("SELECT count(*) FROM t")).scalar()
        with sqlite_engine.begin() as other:
            other.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(OperationalError, match="database is locked"):
            reader.execute(text("INSERT INTO t VALUES (2)"))
        reader.rollback()


def test_write_engine_begins_immediate_and_holds_the_write_lock(sqlite_engine) -> None:
    writer = write_engine(sqlite_engine)
    assert writer.get_execution_options()[WRITE_OPTION] is True
    with writer.connect() as conn:
        conn.execute(text("SELECT count(*) FROM t")).scalar()
        # the write lock is held from BEGIN: a second IMMEDIATE writer cannot start now
        other = sqlite3.connect(sqlite_engine.url.database, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
        with sqlite_engine.begin() as reader:  # readers are never blocked (WAL)
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
        conn.execute(text("INSERT INTO t VALUES (1)"))
        conn.commit()
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_write_option_is_harmless_on_postgresql(pg_database_url) -> None:
    engine = write_engine(make_engine(pg_database_url))
    try:
        with engine.begin() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
