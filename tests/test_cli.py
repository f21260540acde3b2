"""Top-level CLI: version, db upgrade/current, customers list/show, clean errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import keepwell
from keepwell import migrate
from keepwell.cli import app
from keepwell.db import make_engine, session_scope
from tests.factories import at, make_customer, make_subscription

runner = CliRunner()


@pytest.fixture
def home_env(monkeypatch, tmp_path, isolated_database_url):
    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", isolated_database_url)
    return isolated_database_url


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert keepwell.__version__ in result.output


def test_public_api_is_exported() -> None:
    for name in keepwell.__all__:
        assert hasattr(keepwell, name), name


def test_commands_before_migration_fail_cleanly(home_env) -> None:
    result = runner.invoke(app, ["customers", "list"])
    assert result.exit_code == 1
    assert "no keepwell schema yet" in result.output
    assert "keepwell db upgrade" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_is_idempotent(home_env) -> None:
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "migrated from empty" in first.output
    second = runner.invoke(app, ["db", "upgrade"])
    assert second.exit_code == 0 and "up to date" in second.output
    current = runner.invoke(app, ["db", "current"])
    assert f"current: {migrate.head_revision()}" in current.output


def test_customers_list_and_show(home_env) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(home_env)
    with session_scope(engine) as s:
        c = make_customer(s, external_id="acme", name="Acme Travel", industry="travel")
        make_customer(s, external_id="bolt", name="Bolt Health", industry="healthcare")
        make_subscription(s, c, plan="pro", mrr_minor=9900, started_at=at(2024, 1, 1))
    engine.dispose()

    listed = runner.invoke(app, ["customers", "list", "--industry", "travel"])
    assert listed.exit_code == 0, listed.output
    assert "Acme Travel" in listed.output and "$99.00" in listed.output
    assert "Bolt Health" not in listed.output
    assert "1 matching" in listed.output

    shown = runner.invoke(app, ["customers", "show", "acme"])
    assert shown.exit_code == 0, shown.output
    assert "Started pro at $99.00/mo" in shown.output

    missing = runner.invoke(app, ["customers", "show", "nope"])
    assert missing.exit_code == 1
    assert "no customer 'nope'" in missing.output and "Traceback" not in missing.output

    bad_sort = runner.invoke(app, ["customers", "list", "--sort", "password"])
    assert bad_sort.exit_code == 1 and "cannot sort by" in bad_sort.output


def test_bad_configuration_is_one_line(monkeypatch) -> None:
    monkeypatch.setenv("KEEPWELL_REPORTING_TIMEZONE", "Mars/Olympus")
    result = runner.invoke(app, ["customers", "list"])
    assert result.exit_code == 1
    assert "invalid configuration" in result.output and "Traceback" not in result.output
