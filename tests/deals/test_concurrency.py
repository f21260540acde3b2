"""Two renewal runs at once (SQLite and PostgreSQL, fresh database): each renewal gets one deal."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell import migrate
from keepwell.billing.models import BillingPeriod
from keepwell.db import make_engine
from keepwell.deals import service
from keepwell.deals.models import Deal
from tests.factories import at, make_customer, make_subscription
from tests.tasks.test_concurrency import _in_thread


def test_concurrent_renewal_runs_create_each_deal_once(isolated_database_url) -> None:
    engine = make_engine(isolated_database_url)
    try:
        migrate.upgrade(engine)
        with Session(engine) as s:
            for day in (5, 10, 15):
                c = make_customer(s)
                make_subscription(
                    s, c, billing_period=BillingPeriod.year, started_at=at(2025, 3, day)
                )
            s.commit()
        first = Session(engine)
        mine = service.create_renewal_deals(db_session=first, days_ahead=60, at=at(2026, 2, 1))
        assert len(mine.created) == 3
        thread, got = _in_thread(
            engine,
            lambda s: len(
                service.create_renewal_deals(db_session=s, days_ahead=60, at=at(2026, 2, 1)).created
            ),
        )
        time.sleep(0.5)
        first.commit()
        first.close()
        thread.join(30)
        assert got == [0]  # the second run found (or collided with) every deal
        with Session(engine) as s:
            assert s.scalar(select(func.count(Deal.id))) == 3
    finally:
        engine.dispose()
