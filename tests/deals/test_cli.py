"""`keepwell deals ...` end to end on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from keepwell.billing.models import BillingPeriod
from keepwell.cli import app
from keepwell.deals.models import Deal
from keepwell.models import utcnow
from tests.factories import make_customer, make_subscription
from tests.tasks.helpers import make_staff, migrated_home, seeded

runner = CliRunner()


@pytest.fixture
def url(monkeypatch, tmp_path, isolated_database_url) -> str:
    from dateutil.relativedelta import relativedelta

    url = migrated_home(monkeypatch, tmp_path, isolated_database_url)
    with seeded(url) as s:
        ana = make_staff(s, "Ana", email="ana@example.com")
        acme = make_customer(s, external_id="acme", name="Acme", owner_id=ana.id)
        # a yearly subscription renewing in about 20 days
        make_subscription(
            s,
            acme,
            plan="business",
            mrr_minor=5_000,
            billing_period=BillingPeriod.year,
            started_at=utcnow() - relativedelta(years=1) + relativedelta(days=20),
        )
    return url


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def _id(url: str, title: str) -> int:
    with seeded(url) as s:
        return s.scalars(select(Deal.id).where(Deal.title == title)).one()


def test_deal_lifecycle_and_pipeline(url) -> None:
    made = run(
        "deals",
        "create",
        "acme",
        "Add 10 seats",
        "--value",
        "1,200.50",
        "--currency",
        "usd",
        "--owner",
        "ana@example.com",
        "--close",
        "2026-09-30",
    )
    assert made.exit_code == 0, made.output
    assert "in qualified: $1,200.50" in made.output
    run("deals", "create", "acme", "Analytics add-on", "--value", "300", "--stage", "proposal")
    deal_id = _id(url, "Add 10 seats")
    moved = run("deals", "move", str(deal_id), "negotiation")
    assert moved.exit_code == 0 and "now in negotiation" in moved.output

    pipe = run("deals", "pipeline", "--json")
    assert pipe.exit_code == 0, pipe.output
    data = json.loads(pipe.output)
    # 120,050 x 60% = 72,030 ; 30,000 x 30% = 9,000
    assert [(x["key"], x["weighted_minor"]) for x in data["by_stage"]] == [
        ("qualified", 0),
        ("proposal", 9_000),
        ("negotiation", 72_030),
    ]
    assert data["totals"] == [
        {
            "key": "total",
            "currency": "USD",
            "deals": 2,
            "value_minor": 150_050,
            "weighted_minor": 81_030,
            "probability_pct": None,
            "owner_id": None,
        }
    ]
    table = run("deals", "pipeline")
    assert "Pipeline by stage" in table.output and "$720.30" in table.output
    assert "unassigned" in table.output and "Ana" in table.output

    won = run("deals", "won", str(deal_id), "--reason", "signed")
    assert won.exit_code == 0 and "won: $1,200.50" in won.output
    other = _id(url, "Analytics add-on")
    no_reason = run("deals", "lost", str(other))
    assert no_reason.exit_code == 2  # --reason is required
    lost = run("deals", "lost", str(other), "--reason", "no budget")
    assert lost.exit_code == 0 and "lost (no budget)" in lost.output
    assert "No open deals" in run("deals", "pipeline").output
    listed = run("deals", "list")
    assert "Add 10 seats" in listed.output and "won" in listed.output
    assert "Add 10 seats" not in run("deals", "list", "--open").output
    shown = run("deals", "show", str(deal_id))
    assert shown.exit_code == 0, shown.output
    assert "created -> qualified" in shown.output and "qualified -> negotiation" in shown.output
    assert "negotiation -> won  (signed)" in shown.output
    assert (
        "Stage demo: position 15, 20%, open"
        in run("deals", "stage", "demo", "--probability", "20", "--position", "15").output
    )
    stages = run("deals", "stages")
    assert "negotiation" in stages.output and "60%" in stages.output


def test_renewals_are_created_once(url) -> None:
    first = run("deals", "renewals", "--days", "30")
    assert first.exit_code == 0 and "Created 1 renewal deal(s); 0 already" in first.output
    second = run("deals", "renewals", "--days", "30")
    assert "Created 0 renewal deal(s); 1 already existed" in second.output
    listed = run("deals", "list", "--kind", "renewal")
    assert "Renewal of business" in listed.output and "$600.00" in listed.output


def test_bad_input(url) -> None:
    cases = [
        (("deals", "create", "acme", "x", "--value", "-5"), "field 'value_minor'"),
        (("deals", "create", "acme", "x", "--value", "lots"), "field '--value'"),
        (("deals", "create", "acme", "x", "--value", "5", "--currency", "EURO"), "currency"),
        (("deals", "create", "acme", "x", "--value", "5", "--stage", "closing"), "no deal stage"),
        (("deals", "create", "acme", "x", "--value", "5", "--owner", "x@y.z"), "no staff user"),
        (("deals", "move", "999", "won"), "no deal with id 999"),
        (("deals", "renewals", "--days", "0"), "field 'days_ahead'"),
        (("deals", "renewals", "--period", "week"), "field 'periods'"),
        (("deals", "stage", "demo", "--probability", "150"), "field 'probability_pct'"),
        (("deals", "stage", "demo", "--outcome", "maybe"), "field 'outcome'"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
    with seeded(url) as s:
        assert s.scalars(select(Deal)).all() == []
