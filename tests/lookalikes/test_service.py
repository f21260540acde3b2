"""Lookalikes on a hand-made business (SQLite and PostgreSQL) and on the demo."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from typer.testing import CliRunner

from keepwell.errors import InvalidInput
from keepwell.lookalikes.cli import app
from keepwell.lookalikes.service import find_lookalikes
from tests.factories import at, make_customer, make_subscription

D = date(2026, 6, 1)
# id: (status, industry, country, plan, mrr, start, event types used daily in May, seats)
PEOPLE = {
    "s1": ("active", "retail", "DE", "pro", 9900, "2025-06-01", 5, "10"),
    "s2": ("active", "retail", "DE", "pro", 9900, "2025-07-01", 5, "12"),
    "twin": ("active", "retail", "DE", "pro", 9900, "2026-04-01", 5, "10"),
    "cousin": ("active", "retail", "US", "pro", 9900, "2026-04-01", 3, "8"),
    "stranger": ("active", "travel", "JP", "starter", 2900, "2025-06-01", 0, "1"),
    "p_trial": ("trial", "retail", "DE", "pro", 0, "2026-05-10", 5, "10"),
    "p_lead": ("lead", "travel", "JP", None, 0, None, 0, "1"),
}
TYPES = ["login", "report", "export", "comment", "invite"]


def frames() -> dict[str, pd.DataFrame]:
    customers, subs, events = [], [], []
    for cid, (status, industry, country, plan, mrr, start, used, seats) in PEOPLE.items():
        customers.append(
            {
                "customer_id": cid,
                "signup_at": pd.Timestamp("2025-01-01"),
                "industry": industry,
                "country": country,
                "status": status,
                "attr_seats": seats,
            }
        )
        if status == "active":
            subs.append(
                {
                    "customer_id": cid,
                    "plan": plan,
                    "mrr_minor": mrr,
                    "currency": "USD",
                    "started_at": pd.Timestamp(start),
                    "ended_at": None,
                }
            )
        for day in range(10, 32):
            for t in TYPES[:used]:
                events.append((cid, t, pd.Timestamp(f"2026-05-{day:02d} 10:00")))
    return {
        "customers": pd.DataFrame(customers),
        "subscriptions": pd.DataFrame(subs),
        "events": pd.DataFrame(events, columns=["customer_id", "event", "occurred_at"]),
    }


@pytest.fixture
def store(db_session, make_sources):
    for cid, (status, _i, _c, plan, mrr, start, _u, _s) in PEOPLE.items():
        customer = make_customer(db_session, external_id=cid, name=cid.title(), status=status)
        if plan is not None:
            y, m, d = (int(x) for x in start.split("-"))
            make_subscription(
                db_session,
                customer,
                plan=plan,
                mrr_minor=mrr,
                started_at=at(y, m, d),
                status="trialing" if status == "trial" else "active",
            )
    return make_sources(frames())


def run(db_session, settings, src, **kwargs):
    return find_lookalikes(db_session=db_session, settings=settings, sources=src, as_of=D, **kwargs)


def test_best_retained_seeds_and_ranking(db_session, settings, store) -> None:
    result = run(db_session, settings, store)
    assert result.seeds == ["s1", "s2"]  # long tenure, median MRR or more, active usage
    ranked = result.matches["customer_id"].tolist()
    assert ranked == ["twin", "cousin", "stranger"]  # paying customers only, seeds excluded
    m = result.matches.set_index("customer_id")
    assert m.loc["twin", "nearest_seed"] == "s1" and m.loc["twin", "distance"] < 0.5
    assert (
        m.loc["twin", "similarity"]
        > m.loc["cousin", "similarity"]
        > m.loc["stranger", "similarity"]
    )


def test_prospects_and_explicit_seeds(db_session, settings, store) -> None:
    prospects = run(db_session, settings, store, candidates="prospects")
    assert prospects.matches["customer_id"].tolist() == ["p_trial", "p_lead"]
    assert prospects.matches.iloc[0]["plan"] == "pro"  # the trial's plan counts
    explicit = run(db_session, settings, store, seeds=["stranger"], candidates="all", limit=2)
    assert explicit.seeds == ["stranger"]
    assert explicit.matches["customer_id"].tolist()[0] == "p_lead"
    assert len(explicit.matches) == 2


def test_seed_segment_and_bad_input(db_session, settings, store) -> None:
    with pytest.raises(InvalidInput, match="no customer matches the seed rule"):
        run(db_session, settings, store, seed_filters={"industry": ["travel"]})
    with pytest.raises(InvalidInput, match="unknown seed customer 'nobody'"):
        run(db_session, settings, store, seeds=["nobody"])
    with pytest.raises(InvalidInput, match="unknown candidates"):
        run(db_session, settings, store, candidates="aliens")
    with pytest.raises(InvalidInput, match="limit"):
        run(db_session, settings, store, limit=0)
    with pytest.raises(InvalidInput, match="unknown filter field 'colour'"):
        run(db_session, settings, store, seed_filters={"colour": ["red"]})
    retail = run(db_session, settings, store, seed_filters={"industry": ["retail"]})
    assert retail.seeds == ["s1", "s2"] and "industry=retail" in retail.seed_rule


def test_cli_on_the_demo(monkeypatch, saas_settings) -> None:
    monkeypatch.setenv("KEEPWELL_HOME", str(saas_settings.home))
    if saas_settings.database_url:
        monkeypatch.setenv("KEEPWELL_DATABASE_URL", saas_settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    ok = runner.invoke(app, ["--limit", "5", "--min-tenure-days", "90"])
    assert ok.exit_code == 0, ok.output
    assert "seeds" in ok.output and "Most similar customers" in ok.output
    prospects = runner.invoke(app, ["--candidates", "prospects", "--min-tenure-days", "90"])
    assert prospects.exit_code == 0, prospects.output
    bad = runner.invoke(app, ["--seed-segment", "industry"])
    assert bad.exit_code == 1 and "bad segment filter" in bad.output
