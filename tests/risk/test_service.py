"""Scoring service and work list on SQLite and PostgreSQL, with a saved model and small sources."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import func, select

from keepwell.config import Settings
from keepwell.errors import InvalidInput, NotFound
from keepwell.risk import service
from keepwell.risk.artifacts import save_model
from keepwell.risk.model import GradientBoostingRiskModel
from keepwell.risk.models import RiskScore
from keepwell.users.models import StaffUser
from tests.factories import make_customer
from tests.risk.conftest import EVENT_TYPES, subs, synthetic, ts

AS_OF = date(2026, 3, 1)


@pytest.fixture(scope="module")
def model_home(tmp_path_factory) -> Settings:
    """A keepwell home holding one saved model, trained on synthetic observations."""
    settings = Settings(home=tmp_path_factory.mktemp("risk-home"))
    obs = synthetic(customers=500, months=8, seed=5)
    model = GradientBoostingRiskModel(gap_days=31).fit(obs.X, obs.y)
    save_model(
        model,
        settings=settings,
        metadata={
            "features": model.features_,
            "categorical": ["industry"],
            "event_types": EVENT_TYPES,
            "window_days": 28,
            "grace_days": 7,
            "horizon_days": 30,
        },
    )
    return settings


def _events(customer: str, days: list[str], event: str = "login") -> list[dict]:
    return [
        {"customer_id": customer, "event": event, "occurred_at": ts(f"{d} 10:00"), "value": 1.0}
        for d in days
    ]


def business(*, stranger: bool = False) -> dict[str, pd.DataFrame]:
    """risky: usage collapsed and a failed payment; steady: daily use; gone: left in
    January; fresh: started a week ago, no use yet. Currencies differ. ``stranger``: one more
    active customer, unknown to the operational store."""
    ids = ["risky", "steady", "gone", "fresh"] + (["stranger"] if stranger else [])
    jan = [f"2026-01-{d:02d}" for d in range(5, 31)]
    feb = [f"2026-02-{d:02d}" for d in range(1, 29)]
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": ids,
                "signup_at": [ts("2025-06-01")] * len(ids),
                "industry": ["travel", "software", "retail", "retail", "retail"][: len(ids)],
            }
        ),
        "subscriptions": subs(
            ("risky", "2025-06-01", None, 9900),
            ("steady", "2025-06-01", None, 29900),
            ("gone", "2025-06-01", "2026-01-15", 2900),
            ("fresh", "2026-02-22", None, 2900),
            *([("stranger", "2025-06-01", None, 100)] if stranger else []),
        ).assign(currency=["USD", "EUR", "USD", "USD", "USD"][: len(ids)]),
        "events": pd.DataFrame(
            _events("risky", jan)
            + _events("risky", ["2026-02-02"])
            + _events("steady", jan + feb)
            + _events("steady", feb, "export")
            + _events("steady", feb, "report_created")
        ),
        "invoices": pd.DataFrame(
            [
                {
                    "customer_id": "risky",
                    "amount_minor": 9900,
                    "currency": "USD",
                    "issued_at": ts("2026-02-10"),
                    "status": "failed",
                }
            ]
        ),
        "surveys": pd.DataFrame(
            [{"customer_id": "risky", "kind": "nps", "score": 2, "responded_at": ts("2026-02-20")}]
        ),
    }


@pytest.fixture
def store(db_session):
    """The customers of :func:`business` in the operational store, two with an owner."""
    ana = StaffUser(email="ana@example.test", name="Ana")
    ben = StaffUser(email="ben@example.test", name="Ben")
    db_session.add_all([ana, ben])
    db_session.flush()
    made = {
        "risky": make_customer(db_session, external_id="risky", name="Risky Ltd", owner_id=ana.id),
        "steady": make_customer(
            db_session, external_id="steady", name="Steady Co", owner_id=ben.id
        ),
        "gone": make_customer(db_session, external_id="gone", name="Gone Inc"),
        "fresh": make_customer(db_session, external_id="fresh", name="Fresh AG", owner_id=ana.id),
    }
    return made


def test_score_customers_writes_one_row_per_active_customer(
    db_session, store, model_home, make_sources
) -> None:
    src = make_sources(business())
    run = service.score_customers(db_session=db_session, settings=model_home, as_of=AS_OF, src=src)
    assert run.scored == 3 and run.as_of == AS_OF
    assert run.as_of_at == datetime(2026, 3, 1, tzinfo=UTC)
    rows = {r.customer_id: r for r in db_session.execute(select(RiskScore)).scalars()}
    by_ext = {ext: rows[c.id] for ext, c in store.items() if c.id in rows}
    assert set(by_ext) == {"risky", "steady", "fresh"}  # gone is not active
    risky, steady = by_ext["risky"], by_ext["steady"]
    assert risky.probability > steady.probability
    assert risky.band in ("medium", "high") and steady.band == "low"
    assert sum(run.bands.values()) == 3
    for row in by_ext.values():
        assert row.band == service.band_of(row.probability)
        assert row.model_version == run.model_version and row.as_of == run.as_of_at
    # value = annualised MRR in the subscription's currency; at risk = probability x value
    assert (risky.value_minor, risky.currency) == (12 * 9900, "USD")
    assert (steady.value_minor, steady.currency) == (12 * 29900, "EUR")
    assert risky.revenue_at_risk_minor == round(risky.probability * 12 * 9900)
    assert run.revenue_at_risk_minor["USD"] == (
        risky.revenue_at_risk_minor + by_ext["fresh"].revenue_at_risk_minor
    )
    texts = [r["text"] for r in risky.reasons]
    assert "1 failed payment in the last 90 days" in texts
    assert "NPS 2 (detractor) 9 days ago" in texts
    assert all(r["contribution"] > 0 for r in risky.reasons)
    assert set(risky.reasons[0]) == {"driver", "feature", "text", "contribution"}


def test_rescoring_replaces_the_run_and_keeps_history(
    db_session, store, model_home, make_sources
) -> None:
    src = make_sources(business())
    first = service.score_customers(
        db_session=db_session, settings=model_home, as_of=AS_OF, src=src
    )
    again = service.score_customers(
        db_session=db_session, settings=model_home, as_of=AS_OF, src=src
    )
    assert again.replaced == first.scored == 3
    later = service.score_customers(
        db_session=db_session, settings=model_home, as_of=date(2026, 3, 8), src=src
    )
    count = db_session.scalar(select(func.count(RiskScore.id)))
    assert count == 3 + later.scored  # one run per as_of kept


def test_worklist_ranks_by_revenue_at_risk(db_session, store, model_home, make_sources) -> None:
    with pytest.raises(NotFound, match="no risk scores"):
        service.worklist(db_session=db_session)
    src = make_sources(business())
    service.score_customers(db_session=db_session, settings=model_home, as_of=AS_OF, src=src)
    items = service.worklist(db_session=db_session, limit=10)
    assert {i.external_id for i in items} == {"risky", "steady", "fresh"}
    at_risk = [i.revenue_at_risk_minor for i in items]
    assert at_risk == sorted(at_risk, reverse=True)
    risky = next(i for i in items if i.external_id == "risky")
    assert risky.owner == "ana@example.test" and risky.name == "Risky Ltd"
    assert len(risky.reasons) == 3 and "1 failed payment in the last 90 days" in risky.reasons
    mine = service.worklist(db_session=db_session, owner="ANA@example.test", limit=10)
    assert {i.external_id for i in mine} == {"risky", "fresh"}
    assert len(service.worklist(db_session=db_session, limit=1)) == 1
    assert service.worklist(db_session=db_session, owner="nobody@example.test") == []
    with pytest.raises(InvalidInput, match="limit"):
        service.worklist(db_session=db_session, limit=0)


def test_worklist_uses_the_latest_run(db_session, store, model_home, make_sources) -> None:
    src = make_sources(business())
    service.score_customers(db_session=db_session, settings=model_home, as_of=AS_OF, src=src)
    later = service.score_customers(
        db_session=db_session, settings=model_home, as_of=date(2026, 3, 5), src=src
    )
    items = service.worklist(db_session=db_session, limit=10)
    assert {i.as_of for i in items} == {later.as_of_at}


def test_scoring_errors(db_session, store, make_sources, model_home, tmp_path) -> None:
    src = make_sources(business())
    with pytest.raises(NotFound, match="no trained risk model"):
        service.score_customers(
            db_session=db_session, settings=Settings(home=tmp_path), as_of=AS_OF, src=src
        )
    with pytest.raises(NotFound, match="version"):
        service.score_customers(
            db_session=db_session, settings=model_home, as_of=AS_OF, src=src, model_version="x"
        )
    frames = business(stranger=True)
    with pytest.raises(InvalidInput, match="not in the store"):
        service.score_customers(
            db_session=db_session, settings=model_home, as_of=AS_OF, src=make_sources(frames)
        )
    assert db_session.scalar(select(func.count(RiskScore.id))) == 0  # nothing half-written


def test_default_as_of_is_the_day_after_the_data(make_sources) -> None:
    src = make_sources(business())
    # the last recorded moment is the 2026-02-28 10:00 event
    assert service.default_as_of(src) == date(2026, 3, 1)


@pytest.mark.parametrize(
    ("p", "band"), [(0.0, "low"), (0.079, "low"), (0.08, "medium"), (0.2, "high")]
)
def test_bands(p, band) -> None:
    assert service.band_of(p) == band
