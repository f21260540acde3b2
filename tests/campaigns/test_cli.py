"""`keepwell templates` and `keepwell campaigns` on a migrated store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from keepwell import migrate
from keepwell.cli import app
from keepwell.db import make_engine, make_sessionmaker
from tests.factories import make_customer

runner = CliRunner()


@pytest.fixture
def env(monkeypatch, isolated_database_url, tmp_path):
    engine = make_engine(isolated_database_url)
    migrate.upgrade(engine)
    with make_sessionmaker(engine)() as db:
        for i in range(6):
            make_customer(
                db,
                external_id=f"T{i}",
                name=f"Travel {i}",
                email=f"t{i}@travel.test",
                industry="travel",
            )
        make_customer(db, external_id="R1", name="Retail", email="r@retail.test", industry="retail")
        db.commit()
    engine.dispose()
    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", isolated_database_url)
    monkeypatch.setenv("KEEPWELL_SECRET_KEY", "cli-secret")
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _fails(args: list[str], text: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert text in result.output and "Traceback" not in result.output


def test_templates_and_campaign_flow(env) -> None:
    html = env / "news.html"
    html.write_text("<p>Hello {{ customer.name }}</p>\n<p>{{ plan | default('') }}</p>")
    bad = env / "bad.html"
    bad.write_text("<p>ok</p>\n<p>{{ customer.shoe_size }}</p>")
    out = _ok(
        [
            "templates",
            "create",
            "news",
            "--subject",
            "News for {{ customer.name }}",
            "--html",
            str(html),
        ]
    )
    assert "Saved template news (version 1)" in out
    _fails(
        ["templates", "create", "bad", "--subject", "x", "--html", str(bad)],
        "line 2: unknown merge field 'customer.shoe_size'",
    )
    _fails(["templates", "create", "news", "--subject", "x", "--html", str(html)], "exists")
    _fails(
        ["templates", "create", "x", "--subject", "x", "--html", str(env / "missing.html")],
        "file not found",
    )
    out = _ok(
        [
            "templates",
            "create",
            "news",
            "--subject",
            "News {{ customer.name }}",
            "--html",
            str(html),
            "--replace",
        ]
    )
    assert "version 2" in out
    assert "news" in _ok(["templates", "list"])
    shown = _ok(["templates", "show", "news"])
    assert "generated from the HTML" in shown and "customer.name" in shown
    preview = _ok(["templates", "preview", "news", "T1"])
    assert "To: t1@travel.test" in preview and "Subject: News Travel 1" in preview
    assert "Hello Travel 1" in preview
    _fails(["templates", "preview", "news", "NOPE"], "NOPE")
    assert "customer.first_name" in _ok(["templates", "fields"])

    _fails(["campaigns", "create", "c1", "--filter", 'industry = "travel"'], "--template")
    _fails(
        ["campaigns", "create", "c1", "--filter", 'industry = "travel"', "--variant", "A=news"],
        "NAME=TEMPLATE:PERCENT",
    )
    _fails(
        [
            "campaigns",
            "create",
            "c1",
            "--filter",
            'industry = "travel"',
            "--template",
            "news",
            "--send-date",
            "tomorrow",
            "--send-time",
            "09:00",
        ],
        "YYYY-MM-DD",
    )
    out = _ok(
        [
            "campaigns",
            "create",
            "c1",
            "--filter",
            'industry = "travel"',
            "--variant",
            "A=news:50",
            "--variant",
            "B=news:50",
            "--holdout",
            "50",
            "--seed",
            "3",
            "--send-date",
            "2026-12-01",
            "--send-time",
            "09:00",
        ]
    )
    assert "Created campaign c1" in out and "holdout 50%" in out
    assert "c1" in _ok(["campaigns", "list"])
    out = _ok(["campaigns", "launch", "c1"])
    assert "Launched c1: audience 6 (holdout 3); queued 3 now" in out
    again = _ok(["campaigns", "launch", "c1"])
    assert "Relaunched c1" in again and "queued 0 now" in again
    assert "Send: 2026-12-01 09:00 local time" in _ok(["campaigns", "show", "c1"])
    res = json.loads(_ok(["campaigns", "results", "c1", "--json"]))
    assert res["audience"] == 6 and res["holdout"] == 3 and res["total"]["queued"] == 3
    assert res["retention"]["enough_data"] is False
    table = _ok(["campaigns", "results", "c1"])
    assert "Delivery and engagement" in table and "not enough data" in table
    _fails(["templates", "delete", "news"], "used by campaign")
    out = _ok(["campaigns", "cancel", "c1"])
    assert "3 queued message(s) withdrawn" in out
    _fails(["campaigns", "cancel", "c1"], "cancelled")
    _fails(["campaigns", "launch", "nope"], "no campaign 'nope'")
    _fails(["campaigns", "results", "c1", "--days", "0"], "retention_days")
