"""customer_stats from events (DuckDB engine), stored on SQLite and PostgreSQL, then filtered."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import ibis
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.metrics.sources import Sources
from keepwell.segments.models import CustomerStats
from keepwell.segments.service import matching_customer_ids
from keepwell.segments.stats import refresh_stats
from tests.factories import at, make_customer

AS_OF = date(2026, 6, 1)


def _sources(events: list[tuple[str, datetime]]) -> Sources:
    con = ibis.duckdb.connect()
    frame = pd.DataFrame(
        {
            "customer_id": [c for c, _ in events],
            "event": ["login"] * len(events),
            "occurred_at": [t for _, t in events],
            "user_id": ["u"] * len(events),
            "value": [1.0] * len(events),
        }
    )
    customers = pd.DataFrame(
        {"customer_id": list("abcdef"), "signup_at": [datetime(2024, 1, 1)] * 6}
    )
    return Sources.from_frames(con, {"events": frame, "customers": customers})


@pytest.fixture
def stored(db_session: Session) -> dict[str, Customer]:
    people = {k: make_customer(db_session, external_id=k, name=k) for k in "abcdef"}
    naive = lambda *a: datetime(*a)  # noqa: E731 - event frames hold naive UTC
    events = [("a", naive(2026, 5, 4 + i, 9)) for i in range(20)]  # 20 days: May 4..23
    events += [("a", naive(2026, 5, 31, 22)), ("a", naive(2026, 5, 31, 23))]
    events += [("b", naive(2026, 5, d, 12)) for d in (4, 5, 6, 8, 10)]
    events += [("c", naive(2026, 4, 1, 6))]
    events += [("d", naive(2025, 1, 1, 0))]
    events += [("f", naive(2026, 6, 2, 0))]  # after as_of: ignored
    events += [("zz", naive(2026, 5, 20))]  # not in the operational store: skipped
    result = refresh_stats(db_session=db_session, sources=_sources(events), as_of=AS_OF)
    assert result.customers == 4
    assert result.bands == {"daily": 1, "weekly": 1, "monthly": 0, "less than monthly": 2}
    return people


def test_stats_rows(db_session: Session, stored) -> None:
    rows = {r.customer_id: r for r in db_session.scalars(select(CustomerStats))}
    got = {
        k: (
            rows[c.id].usage_band,
            rows[c.id].active_days_28d,
            rows[c.id].events_28d,
            rows[c.id].days_since_last_event,
            rows[c.id].last_event_at,
        )
        for k, c in stored.items()
        if c.id in rows
    }
    assert got == {
        "a": ("daily", 21, 22, 0, at(2026, 5, 31, 23)),
        "b": ("weekly", 5, 5, 21, at(2026, 5, 10, 12)),
        "c": ("less than monthly", 0, 0, 60, at(2026, 4, 1, 6)),
        "d": (
            "less than monthly",
            0,
            0,
            (date(2026, 6, 1) - date(2025, 1, 1)).days,
            at(2025, 1, 1),
        ),
    }
    assert all(r.as_of == at(2026, 6, 1) for r in rows.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('usage_band = "less than monthly"', "cd"),
        ("days_since_last_event > 30", "cd"),
        ("usage_band is null", "ef"),
        ("active_days_28d >= 16", "a"),
        ('last_event_at >= "2026-05-10"', "ab"),
    ],
)
def test_filters_read_stats(db_session: Session, stored, text: str, expected: str) -> None:
    ids = set(db_session.scalars(matching_customer_ids(db_session=db_session, filter_text=text)))
    assert "".join(k for k, c in stored.items() if c.id in ids) == expected


def test_refresh_replaces_rows(db_session: Session, stored) -> None:
    later = refresh_stats(
        db_session=db_session,
        sources=_sources([("e", datetime(2026, 6, 20))]),
        as_of=AS_OF + timedelta(days=30),
    )
    assert later.customers == 1
    rows = list(db_session.scalars(select(CustomerStats)))
    assert [(r.customer_id, r.usage_band, r.days_since_last_event) for r in rows] == [
        (stored["e"].id, "monthly", 11)
    ]
