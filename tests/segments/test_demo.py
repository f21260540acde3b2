"""The demo business on SQLite and on PostgreSQL: same customer stats, same segment members."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from keepwell.customers.models import Customer
from keepwell.db import engine_from_settings, session_scope
from keepwell.segments import service
from keepwell.segments.defaults import DEFAULTS, install_defaults
from keepwell.segments.models import CustomerStats
from keepwell.segments.stats import refresh_stats
from tests.health.homes import demo_settings

pytestmark = pytest.mark.slow
AS_OF = date(2026, 11, 1)
EXTRA = [
    'usage_band in ["daily", "weekly"] and mrr >= 50',
    'attributes.plan is not null or tag = "vip"',
    "active_days_28d >= 4 and not (days_since_last_event > 3)",
]


def _snapshot(settings) -> tuple[list[tuple], dict[str, list[str]]]:
    engine = engine_from_settings(settings)
    try:
        with session_scope(engine) as s:
            result = refresh_stats(db_session=s, settings=settings, as_of=AS_OF)
            assert result.customers == sum(result.bands.values()) > 0
        with session_scope(engine) as s:
            install_defaults(db_session=s)
            for n, text in enumerate(EXTRA):
                service.create_segment(db_session=s, name=f"extra {n}", filter_text=text)
            service.refresh_all(db_session=s)
            stats = sorted(
                (ext, r.usage_band, r.active_days_28d, r.events_28d, r.days_since_last_event)
                for ext, r in s.execute(
                    select(Customer.external_id, CustomerStats).join(
                        CustomerStats, CustomerStats.customer_id == Customer.id
                    )
                )
            )
            members = {}
            for seg in service.list_segments(db_session=s):
                ids = service.member_ids(db_session=s, segment=seg, now=None)
                members[seg.name] = sorted(
                    s.scalars(select(Customer.external_id).where(Customer.id.in_(ids)))
                )
                assert seg.member_count == len(members[seg.name])
    finally:
        engine.dispose()
    return stats, members


def test_same_stats_and_members_on_both_databases(tmp_path) -> None:
    got = {}
    for backend in ("sqlite", "postgresql"):
        with demo_settings(backend, tmp_path / backend, customers=150, months=6, seed=3) as st:
            got[backend] = _snapshot(st)
    (stats, members), (pg_stats, pg_members) = got["sqlite"], got["postgresql"]
    assert stats == pg_stats
    assert members == pg_members
    assert set(members) == {d.name for d in DEFAULTS} | {f"extra {n}" for n in range(3)}
    for ext, band, days, events, since in stats:
        assert since >= 0 and events >= days >= 0
        expected = "daily" if days >= 16 else "weekly" if days >= 4 else "monthly" if days else None
        assert band == (expected or "less than monthly"), ext
    assert any(members[name] for name in ("Forgotten zone", "Lapsed", "Churned"))
