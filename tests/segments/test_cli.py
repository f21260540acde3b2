"""`keepwell segments` and `keepwell tags` end to end on SQLite and PostgreSQL stores."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from keepwell import migrate
from keepwell.cli import app
from keepwell.customers.models import Customer
from keepwell.db import make_engine, session_scope
from keepwell.segments.models import CustomerStats, SegmentMembershipChange
from tests.factories import make_customer, make_subscription

runner = CliRunner()


@pytest.fixture
def store(monkeypatch, tmp_path, isolated_database_url):
    """A migrated store with four customers; the CLI is pointed at it."""
    engine = make_engine(isolated_database_url)
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        for ext, industry in (("t1", "travel"), ("t2", "travel"), ("h1", "hospitality")):
            c = make_customer(s, external_id=ext, name=ext.upper(), industry=industry)
            make_subscription(s, c, mrr_minor=15000 if ext != "t2" else 5000)
        make_customer(s, external_id="r1", name="R1", industry="retail")
    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", isolated_database_url)
    monkeypatch.setenv("COLUMNS", "200")
    yield engine
    engine.dispose()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_segment_lifecycle(store) -> None:
    out = run("segments", "create", "Big travel", "--filter", 'industry = "travel" and mrr >= 100')
    assert "Created segment Big travel with 1 members." in out
    assert run("segments", "count", "Big travel").strip() == "1"
    assert run("segments", "count", "--filter", "mrr > 0").strip() == "3"
    listed = run("segments", "list")
    assert "Big travel" in listed and 'industry = "travel" and mrr >= 100' in listed
    members = run("segments", "members", "Big travel")
    assert "T1" in members and "T2" not in members
    with session_scope(store) as s:
        t2 = s.scalars(select(Customer).where(Customer.external_id == "t2")).one()
        t2.industry = "retail"
        h1 = s.scalars(select(Customer).where(Customer.external_id == "h1")).one()
        h1.industry = "travel"
    out = run("segments", "refresh", "Big travel")
    assert "Big travel" in out and "1" in out
    show = run("segments", "show", "Big travel")
    assert "members now" in show and "h1" in show and "entered" in show
    with session_scope(store) as s:
        assert s.query(SegmentMembershipChange).count() == 2
    all_out = run("segments", "refresh")
    assert "Refreshed 1 segment(s)" in all_out
    run("segments", "delete", "Big travel", "--yes")
    assert "No segments yet" in run("segments", "list")
    # bad input: one clear line, exit code 1
    out = run("segments", "create", "X", "--filter", 'indstry = "travel"', code=1)
    assert "unknown field 'indstry'; did you mean 'industry'? at line 1, column 1" in out
    assert "Traceback" not in out
    out = run("segments", "count", "--filter", 'name = "unterminated', code=1)
    assert "unterminated string" in out and "column 8" in out
    out = run("segments", "count", "--filter", "mrr >= 'a'", code=1)
    assert "is a string, but this is a money field" in out
    assert "no segment 'Nope'" in run("segments", "show", "Nope", code=1)
    run("segments", "create", "X", "--filter", "mrr > 1")
    assert "already exists" in run("segments", "create", "X", "--filter", "mrr > 2", code=1)
    assert "one of them" in run("segments", "count", code=1)
    assert "not a date" in run("segments", "stats", "refresh", "--as-of", "soon", code=1)


def test_defaults_tags_and_stats(store) -> None:
    first = run("segments", "install-defaults")
    assert first.count("added") == 7
    again = run("segments", "install-defaults")
    assert again.count("already there") == 7 and "added" not in again
    assert run("segments", "count", "Crisis-hit industries").strip() == "3"
    fields = run("segments", "fields")
    for name in ("usage_band", "days_since_last_event", "health_band", "money", "attributes."):
        assert name in fields
    out = run("segments", "create", "Board", "--static", "--customers", "t1,r1")
    assert "with 2 members" in out
    assert "not found: zz" in run(
        "segments", "create", "B2", "--static", "--customers", "zz", code=1
    )
    assert "Added 1 customer(s) to Board." in run(
        "segments", "add", "Board", "--customers", "h1,t1"
    )
    assert "Removed 1 customer(s)" in run("segments", "remove", "Board", "--customers", "h1,t2")
    assert "is dynamic" in run(
        "segments", "add", "Crisis-hit industries", "--customers", "r1", code=1
    )
    assert "Tagged t1 'vip'." in run("tags", "add", "t1", "vip")
    assert "already has" in run("tags", "add", "t1", "vip")
    assert "Tagged 1 customer(s) 'vip'." in run("tags", "bulk-add", "vip", "--segment", "Board")
    assert "Tagged 2 customer(s) 'q3'." in run("tags", "bulk-add", "q3", "--customers", "t1,t2")
    listed = run("tags", "list")
    assert "vip" in listed and "q3" in listed
    assert "Untagged 1 customer(s) 'q3'." in run(
        "tags", "bulk-remove", "q3", "--customers", "t2,h1"
    )
    assert "Untagged r1 'vip'." in run("tags", "remove", "r1", "vip")
    assert "exactly one of" in run("tags", "bulk-add", "x", code=1)
    assert "no customer 'nope'" in run("tags", "add", "nope", "vip", code=1)
    assert "Renamed tag 'vip' to 'VIP'." in run("tags", "rename", "vip", "VIP")
    assert run("segments", "count", "--filter", 'tag = "VIP"').strip() == "1"
    assert "(1 customer(s) had it)" in run("tags", "delete", "VIP", "--yes")
    out = run("segments", "stats", "refresh", "--as-of", "2026-06-01")
    assert "Customer stats as of 2026-06-01: 0 customers with events" in out
    with session_scope(store) as s:
        assert s.query(CustomerStats).count() == 0
