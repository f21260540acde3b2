"""The metrics cache: keyed by metric, parameters and data version; computed once per version."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from keepwell import migrate
from keepwell.cli import app
from keepwell.config import Settings
from keepwell.db import make_engine, session_scope
from keepwell.events.store import EventStore
from keepwell.metrics.rollup import Rollup
from keepwell.reports import cache
from keepwell.users import service as users_service
from keepwell.web import customer_edits
from tests.factories import make_subscription

RANGE = {"start": date(2026, 1, 1), "end": date(2026, 4, 1), "period": "month"}


@pytest.fixture
def home(settings: Settings):
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        for ext, mrr in (("a", 1000), ("b", 2500)):
            c = customer_edits.create_customer(
                db_session=s,
                external_id=ext,
                name=ext.upper(),
                signup_at=datetime(2025, 6, 1, tzinfo=UTC),
            )
            make_subscription(s, c, mrr_minor=mrr, started_at=datetime(2025, 6, 1, tzinfo=UTC))
        users_service.create(
            db_session=s,
            email="u@example.com",
            name="U",
            role="admin",
            password="correct horse battery",
        )
    yield settings, engine
    engine.dispose()


def _events(settings: Settings, n: int) -> None:
    EventStore.from_settings(settings).append(
        pa.table(
            {
                "customer_id": ["a"] * n,
                "event": ["login"] * n,
                "occurred_at": pa.array(
                    [datetime(2026, 2, 1, 10, tzinfo=UTC)] * n, type=pa.timestamp("us", tz="UTC")
                ),
            }
        )
    )


def test_second_request_is_served_from_disk(home) -> None:
    settings, engine = home
    stats = cache.CacheStats()
    with cache.MetricsCache(settings, engine, stats=stats) as c:
        first = c.metric("mrr", **RANGE)
    assert stats.misses == 1 and stats.hits == 0
    assert list(first["mrr_end"]) == [3500, 3500, 3500]
    with cache.MetricsCache(settings, engine, stats=stats) as c:
        second = c.metric("mrr", **RANGE)
        assert c._src is None  # the metric sources were never opened
    assert stats.misses == 1 and stats.hits == 1
    pd.testing.assert_frame_equal(first, second, check_dtype=False)
    with cache.MetricsCache(settings, engine, stats=stats) as c:
        c.metric("mrr", **{**RANGE, "period": "quarter"})  # other parameters: computed
    assert stats.misses == 2


def test_data_version_follows_every_store_but_not_logins(home) -> None:
    settings, engine = home
    v0 = cache.data_version(settings, engine)
    assert cache.data_version(settings, engine) == v0
    with session_scope(engine) as s:
        assert users_service.authenticate(
            db_session=s, email="u@example.com", password="correct horse battery", ip="127.0.0.1"
        )
    assert cache.data_version(settings, engine) == v0  # a login changes no metric
    with session_scope(engine) as s:
        customer_edits.create_customer(db_session=s, external_id="c", name="C")
    v1 = cache.data_version(settings, engine)
    assert v1 != v0
    _events(settings, 3)
    v2 = cache.data_version(settings, engine)
    assert v2 != v1
    Rollup.from_settings(settings).refresh(EventStore.from_settings(settings))
    assert cache.data_version(settings, engine) not in (v1, v2)
    with session_scope(engine) as s:
        users_service.create(
            db_session=s, email="new@example.com", name="N", role="csm", password="x" * 12
        )
    assert cache.data_version(settings, engine) != v2


def test_new_events_are_counted_after_a_miss(home) -> None:
    settings, engine = home
    args = {**RANGE, "period": "month"}
    with cache.MetricsCache(settings, engine) as c:
        before = c.metric("active_customers", **args)
    assert list(before["mau"]) == [0, 0, 0]
    _events(settings, 2)
    with cache.MetricsCache(settings, engine) as c:
        after = c.metric("active_customers", **args)
    assert list(after["mau"]) == [0, 1, 0]  # February: customer a was active


def test_blob_and_pruning(home) -> None:
    settings, engine = home
    made = []
    with cache.MetricsCache(settings, engine) as c:
        assert c.blob("chart-x", {"a": 1}, lambda: made.append(1) or b"png") == b"png"
        assert c.blob("chart-x", {"a": 1}, lambda: made.append(1) or b"other") == b"png"
    assert made == [1]
    for i in range(cache.KEEP_VERSIONS + 2):
        with session_scope(engine) as s:
            customer_edits.create_customer(db_session=s, external_id=f"p{i}", name="P")
        with cache.MetricsCache(settings, engine) as c:
            c.blob("chart-x", {"a": 1}, lambda: b"png")
    versions = [p for p in (settings.home / "cache" / "metrics").iterdir() if p.is_dir()]
    assert len(versions) == cache.KEEP_VERSIONS


def test_dashboard_range() -> None:
    assert cache.dashboard_range(12, today=date(2026, 11, 22)) == (
        date(2025, 11, 1),
        date(2026, 11, 1),
    )
    assert cache.dashboard_range(1, today=date(2026, 1, 5)) == (date(2025, 12, 1), date(2026, 1, 1))


def test_report_warm_command(home, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, _ = home
    monkeypatch.setenv("KEEPWELL_HOME", str(settings.home))
    runner = CliRunner()
    first = runner.invoke(app, ["report", "warm", "--months", "3"])
    assert first.exit_code == 0, first.output
    # 7 metrics, plus the charts that have data (no usage events: no frequency spectrum)
    computed = int(re.search(r"computed (\d+) results", first.output).group(1))
    assert 7 < computed < 11
    again = runner.invoke(app, ["report", "warm", "--months", "3"])
    assert "everything was cached already" in again.output
    bad = runner.invoke(app, ["report", "warm", "--period", "year"])
    assert bad.exit_code == 1 and "period" in bad.output


# -- background computation: fresh, stale, computing, failed ------------------------------------


def _kpi_mrr(figures: cache.DashboardFigures) -> list[int]:
    return list(figures.frames["mrr"]["mrr_end"])


def test_dashboard_view_fresh_computing_and_stale(home, monkeypatch) -> None:
    from keepwell.reports import background

    settings, engine = home
    args = {"start": date(2026, 1, 1), "end": date(2026, 3, 1), "period": "month"}
    first = background.dashboard_view(settings, engine, **args, wait=0)
    assert first.state == "computing" and first.figures is None  # nothing stored yet
    done = background.dashboard_view(settings, engine, **args, wait=120)
    assert done.state == "fresh" and _kpi_mrr(done.figures) == [3500, 3500]
    misses = cache.STATS.misses
    again = background.dashboard_view(settings, engine, **args, wait=0)
    assert again.state == "fresh" and _kpi_mrr(again.figures) == [3500, 3500]
    assert cache.STATS.misses == misses  # read back, nothing computed

    with session_scope(engine) as s:  # a new paying customer: the data version changes
        c = customer_edits.create_customer(
            db_session=s, external_id="n", name="N", signup_at=datetime(2025, 6, 1, tzinfo=UTC)
        )
        make_subscription(s, c, mrr_minor=500, started_at=datetime(2025, 6, 1, tzinfo=UTC))
    old = background.dashboard_view(settings, engine, **args, wait=0)
    assert old.state == "stale" and _kpi_mrr(old.figures) == [3500, 3500]
    assert old.figures.computed_at <= datetime.now(UTC)
    monkeypatch.setattr(background, "STALE_WAIT", 120)  # wait for the new figures
    new = background.dashboard_view(settings, engine, **args, wait=120)
    assert new.state == "fresh" and _kpi_mrr(new.figures) == [4000, 4000]


def test_dashboard_view_reports_a_failure_and_retries(home, monkeypatch) -> None:
    from keepwell.reports import background

    settings, engine = home
    args = {"start": date(2026, 1, 1), "end": date(2026, 2, 1), "period": "month"}

    def broken(*_a):
        raise RuntimeError("disk full")

    monkeypatch.setattr(background, "_compute", broken)
    failed = background.dashboard_view(settings, engine, **args, wait=60)
    assert failed.state == "failed" and failed.error == "RuntimeError: disk full"
    monkeypatch.undo()
    retried = background.dashboard_view(settings, engine, **args, wait=120)
    assert retried.state == "fresh" and _kpi_mrr(retried.figures) == [3500]


def test_visitors_join_the_computation_under_way(home) -> None:
    from keepwell.reports import background

    settings, engine = home
    args = {"start": date(2025, 10, 1), "end": date(2026, 1, 1), "period": "month"}
    version = cache.data_version(settings, engine)
    one = background.submit(settings, engine, version=version, **args)
    two = background.submit(settings, engine, version=version, **args)
    assert one is two
    one.result(timeout=120)


def test_keep_warm_recomputes_after_a_data_change(home, monkeypatch) -> None:
    import threading
    import time

    from keepwell.reports import background

    settings, engine = home
    monkeypatch.setattr(cache, "DEFAULT_WARM", ((2, "month"),))
    monkeypatch.setattr(background, "DEFAULT_WARM", ((2, "month"),))
    stop, warmed = threading.Event(), []
    thread = threading.Thread(
        target=background.keep_warm,
        args=(settings, engine, 0.2),
        kwargs={"stop": stop, "on_run": warmed.append},
    )
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not warmed:
            assert time.monotonic() < deadline, "the warmer never ran"
            time.sleep(0.05)
        time.sleep(0.6)  # a few more checks: nothing changed, nothing computed
        assert len(warmed) == 1 and warmed[0] == cache.data_version(settings, engine)
        with session_scope(engine) as s:
            customer_edits.create_customer(db_session=s, external_id="w", name="W")
        while len(warmed) < 2:
            assert time.monotonic() < deadline, "the warmer missed the data change"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    start, end = cache.dashboard_range(2)
    view = background.dashboard_view(settings, engine, start=start, end=end, period="month", wait=0)
    assert view.state == "fresh"
