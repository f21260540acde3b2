"""`keepwell health` on a small demo store (SQLite and PostgreSQL): score, show, backtest."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from keepwell.health.cli import app

runner = CliRunner()


@pytest.fixture
def env(monkeypatch, saas_settings):
    monkeypatch.setenv("KEEPWELL_HOME", str(saas_settings.home))
    if saas_settings.database_url:
        monkeypatch.setenv("KEEPWELL_DATABASE_URL", saas_settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    return saas_settings


def test_score_then_show(env) -> None:
    result = runner.invoke(app, ["score"])
    assert result.exit_code == 0, result.output
    assert "Scored" in result.output and "green" in result.output and "red" in result.output
    again = runner.invoke(app, ["score", "--as-of", "2026-01-15"])
    assert again.exit_code == 0, again.output
    show = runner.invoke(app, ["show", "C0000001"])
    assert show.exit_code == 0, show.output
    assert "Health of C0000001" in show.output  # (columns depend on the terminal width)
    missing = runner.invoke(app, ["show", "NOPE"])
    assert missing.exit_code == 1 and "no customer 'NOPE'" in missing.output


def test_backtest_table_and_json(env, tmp_path) -> None:
    table = runner.invoke(app, ["backtest", "--periods", "4"])
    assert table.exit_code == 0, table.output
    assert "AUC" in table.output and "Churn per band" in table.output
    out = runner.invoke(app, ["backtest", "--periods", "4", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert len(report["dates"]) == 4 and report["observations"] > 100
    assert 0 <= report["auc"] <= 1 and report["churned"] > 0
    assert sum(b["customers"] for b in report["by_band"]) == report["observations"]
    # a configuration that only looks at usage ranks churners better than chance
    cfg = tmp_path / "usage.toml"
    cfg.write_text('name = "usage-only"\n[weights]\nusage = 1\ntrend = 1\n', encoding="utf-8")
    usage = runner.invoke(app, ["backtest", "--periods", "4", "--json", "--config", str(cfg)])
    assert usage.exit_code == 0, usage.output
    assert json.loads(usage.output)["config"] == "usage-only"


def test_bad_config_and_dates(env, tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[weights]\nusage = -1\n", encoding="utf-8")
    bad = runner.invoke(app, ["score", "--config", str(cfg)])
    assert bad.exit_code == 1 and "field 'weights.usage'" in bad.output
    assert "Traceback" not in bad.output
    late = runner.invoke(app, ["backtest", "--date", "2999-01-01"])
    assert late.exit_code == 1 and "not complete" in late.output
    nodate = runner.invoke(app, ["score", "--as-of", "someday"])
    assert nodate.exit_code != 0 and "YYYY-MM-DD" in nodate.output
