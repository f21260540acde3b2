"""Health service on a hand-made store (SQLite and PostgreSQL): scores, risk, history, leaks."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import func, select

from keepwell.errors import InvalidInput, NotFound
from keepwell.health import service
from keepwell.health.config import HealthConfig
from keepwell.health.models import HealthScore
from keepwell.risk.models import RiskScore
from tests.factories import at, make_customer

D = date(2026, 6, 1)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def frames(extra: bool = False) -> dict[str, pd.DataFrame]:
    """Customer a: daily user, promoter. Customer b: stopped using it, failed payment,
    detractor, many tickets. With ``extra``, data on and after the snapshot day is added."""
    events = [("a", "login", ts(f"2026-05-{d:02d} 10:00")) for d in range(4, 32)]
    events += [("a", "export", ts(f"2026-05-{d:02d} 11:00")) for d in range(4, 32, 3)]
    events += [("a", "comment", ts("2026-05-20 12:00"))]
    events += [("b", "login", ts(f"2026-04-{d:02d} 09:00")) for d in range(1, 25)]
    invoices = [
        ("a", ts("2026-05-01"), ts("2026-05-01"), ts("2026-05-01 00:00:05"), "paid"),
        ("b", ts("2026-05-10"), ts("2026-05-10"), None, "failed"),
    ]
    surveys = [("a", "nps", 9, ts("2026-04-15")), ("b", "nps", 3, ts("2026-04-20"))]
    tickets = [("b", ts(f"2026-05-{d:02d}")) for d in (5, 12, 19)]
    if extra:  # the future must not change anything
        events += [("b", "login", ts(f"2026-06-{d:02d} 09:00")) for d in range(1, 20)]
        events += [("a", "login", ts("2026-06-01 00:00"))]
        invoices += [("a", ts("2026-06-01"), ts("2026-06-01"), None, "failed")]
        surveys += [("b", "nps", 10, ts("2026-06-01 00:00")), ("a", "csat", 1, ts("2026-06-03"))]
        tickets += [("a", ts("2026-06-01 00:00")), ("a", ts("2026-06-02"))]
    return {
        "customers": pd.DataFrame(
            {"customer_id": ["a", "b"], "signup_at": [ts("2026-01-01")] * 2, "status": "active"}
        ),
        "subscriptions": pd.DataFrame(
            {
                "customer_id": ["a", "b"],
                "plan": "pro",
                "mrr_minor": 9900,
                "currency": "USD",
                "started_at": [ts("2026-01-01")] * 2,
                "ended_at": [None, None],
            }
        ),
        "events": pd.DataFrame(events, columns=["customer_id", "event", "occurred_at"]),
        "invoices": pd.DataFrame(
            [(c, 9900, "USD", i, d, p, s) for c, i, d, p, s in invoices],
            columns=[
                "customer_id",
                "amount_minor",
                "currency",
                "issued_at",
                "due_at",
                "paid_at",
                "status",
            ],
        ),
        "surveys": pd.DataFrame(surveys, columns=["customer_id", "kind", "score", "responded_at"]),
        "tickets": pd.DataFrame(tickets, columns=["customer_id", "opened_at"]),
    }


@pytest.fixture
def store(db_session):
    """Customers a and b in the database, with risk scores (b's scored after the snapshot)."""
    a = make_customer(db_session, external_id="a")
    b = make_customer(db_session, external_id="b")
    for cust, p, scored in ((a, 0.02, at(2026, 5, 31)), (b, 0.4, at(2026, 6, 2))):
        db_session.add(
            RiskScore(
                customer_id=cust.id,
                as_of=at(2026, 5, 31),
                scored_at=scored,
                model_version="test",
                probability=p,
                band="x",
            )
        )
    db_session.flush()
    return a, b


def test_score_writes_rows_and_ranks_the_unhealthy_lower(
    db_session, store, make_sources, settings
) -> None:
    src = make_sources(frames())
    run = service.score_health(db_session=db_session, settings=settings, as_of=D, sources=src)
    assert run.scored == 2 and sum(run.bands.values()) == 2
    rows = {
        r.customer_id: r for r in db_session.scalars(select(HealthScore).order_by(HealthScore.id))
    }
    a, b = store
    ra, rb = rows[a.id], rows[b.id]
    assert ra.band == "green" and rb.band == "red"
    assert ra.as_of == at(2026, 6, 1) and ra.config == "default"
    assert ra.components["risk"] == pytest.approx(100 - 15 * 0.02 / 0.05)
    assert rb.components["risk"] == pytest.approx(25 - 25 * 0.1 / 0.2)  # 0.4 -> 12.5
    assert rb.components["payments"] == 40.0 and rb.components["nps"] == pytest.approx(20.0)
    assert rb.components["support"] == 35.0  # 3 tickets: halfway from 2 -> 50 to 4 -> 20
    assert ra.components["csat"] is None  # no answer: left out

    # idempotent for the same day and configuration; another day adds history
    service.score_health(db_session=db_session, settings=settings, as_of=D, sources=src)
    assert db_session.scalar(select(func.count(HealthScore.id))) == 2
    service.score_health(
        db_session=db_session, settings=settings, as_of=date(2026, 5, 15), sources=src
    )
    customer, history = service.history(db_session=db_session, ref="b")
    assert customer.id == b.id
    assert [h.as_of for h in history] == [at(2026, 6, 1), at(2026, 5, 15)]
    latest = service.latest_scores(db_session=db_session)
    assert sorted(latest["customer_id"]) == ["a", "b"]
    assert set(latest["as_of"].map(lambda t: t.date())) == {D}


def test_backtest_mode_reads_only_risk_scores_that_existed(db_session, store, make_sources):
    src = make_sources(frames())
    got = service.compute_health(
        db_session=db_session,
        src=src,
        config=HealthConfig(),
        as_of=[D],
        risk_scored_before_snapshot=True,
    ).set_index("customer_id")
    assert got.loc["a", "risk"] > 0 and pd.isna(got.loc["b", "risk"])


def test_no_data_from_the_snapshot_day_or_later_is_used(db_session, store, duckdb_con):
    from keepwell.metrics.sources import Sources

    cfg = HealthConfig()
    before = service.compute_health(
        db_session=db_session,
        src=Sources.from_frames(duckdb_con, frames(), prefix="p_"),
        config=cfg,
        as_of=[D],
    )
    after = service.compute_health(
        db_session=db_session,
        src=Sources.from_frames(duckdb_con, frames(extra=True), prefix="q_"),
        config=cfg,
        as_of=[D],
    )
    pd.testing.assert_frame_equal(before, after)


def test_bad_input(db_session, store, make_sources, settings) -> None:
    src = make_sources(frames())
    with pytest.raises(NotFound, match="no customer 'zz'"):
        service.history(db_session=db_session, ref="zz")
    with pytest.raises(InvalidInput, match="limit"):
        service.history(db_session=db_session, ref="a", limit=0)
    with pytest.raises(InvalidInput, match="no as_of dates"):
        service.compute_health(db_session=db_session, src=src, config=HealthConfig(), as_of=[])
    with pytest.raises(InvalidInput, match="not complete"):
        service.backtest_health(
            db_session=db_session,
            settings=settings,
            dates=[date(2026, 5, 20)],
            end=D,
            sources=src,
        )
    with pytest.raises(InvalidInput, match="no customer churned"):
        service.backtest_health(
            db_session=db_session,
            settings=settings,
            dates=[date(2026, 4, 1)],
            end=D,
            sources=src,
        )
    with pytest.raises(InvalidInput, match="horizon"):
        service.backtest_health(
            db_session=db_session, settings=settings, horizon_days=0, sources=src
        )


def test_scored_customer_missing_from_the_store(db_session, make_sources, settings) -> None:
    make_customer(db_session, external_id="a")
    with pytest.raises(InvalidInput, match="not in the store"):
        service.score_health(
            db_session=db_session, settings=settings, as_of=D, sources=make_sources(frames())
        )
    assert db_session.scalar(select(func.count(HealthScore.id))) == 0
