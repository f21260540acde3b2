"""Two sessions at once: round-robin never hands out the same turn, a dedup key makes one task.

Each test commits, so it runs on its own fresh database (SQLite and PostgreSQL). On SQLite a
second writer may be refused (``database is locked``); it retries, as a caller would.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from keepwell import migrate
from keepwell.db import make_engine
from keepwell.tasks import assignment, service
from keepwell.tasks.models import Task
from tests.factories import make_customer
from tests.tasks.helpers import make_staff


def _setup(url: str):
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as s:
        a, b = make_staff(s, "A"), make_staff(s, "B")
        customer = make_customer(s)
        assignment.create_rule(db_session=s, name="rr", assignee_ids=[a.id, b.id])
        s.commit()
        return engine, a.id, b.id, customer.id


def _in_thread(engine, work) -> tuple[threading.Thread, list]:
    out: list = []

    def run() -> None:
        for _ in range(20):
            with Session(engine) as s:
                try:
                    out.append(work(s))
                    s.commit()
                    return
                except OperationalError:  # SQLite: another writer holds the file
                    s.rollback()
                    time.sleep(0.1)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_two_sessions_take_different_turns(isolated_database_url) -> None:
    engine, a, b, customer = _setup(isolated_database_url)
    try:
        first = Session(engine)
        mine = service.create_task(db_session=first, customer_id=customer, title="first").owner_id
        thread, got = _in_thread(
            engine,
            lambda s: (
                service.create_task(db_session=s, customer_id=customer, title="second").owner_id
            ),
        )
        time.sleep(0.5)
        assert thread.is_alive()  # waits for the first session's lock
        first.commit()
        first.close()
        thread.join(30)
        assert {mine, got[0]} == {a, b}
    finally:
        engine.dispose()


def test_same_dedup_key_at_once_makes_one_task(isolated_database_url) -> None:
    engine, _, _, customer = _setup(isolated_database_url)
    try:
        first = Session(engine)
        task_id = service.create_task(
            db_session=first, customer_id=customer, title="x", dedup_key="rule:1:occ:1"
        ).id
        thread, got = _in_thread(
            engine,
            lambda s: (
                service.create_task(
                    db_session=s, customer_id=customer, title="x", dedup_key="rule:1:occ:1"
                ).id
            ),
        )
        time.sleep(0.5)
        first.commit()
        first.close()
        thread.join(30)
        assert got == [task_id]
        with Session(engine) as s:
            assert s.scalar(select(func.count(Task.id))) == 1
    finally:
        engine.dispose()
