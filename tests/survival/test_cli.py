"""`keepwell survival` on a small demo store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from keepwell.metrics.sources import open_default
from keepwell.survival import service
from keepwell.survival.cli import app

runner = CliRunner()


@pytest.fixture
def env(monkeypatch, saas_settings):
    monkeypatch.setenv("KEEPWELL_HOME", str(saas_settings.home))
    if saas_settings.database_url:
        monkeypatch.setenv("KEEPWELL_DATABASE_URL", saas_settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    return saas_settings


def test_service_on_the_demo(env) -> None:
    src = open_default(env)
    curves = service.retention_curves(src, by="plan")
    assert set(curves.summary["segment"]) <= {"starter", "pro", "business", "enterprise"}
    assert curves.summary["customers"].sum() > 200
    assert 0 <= curves.logrank["p_value"] <= 1
    life = service.expected_lifetimes(src)
    assert len(life) == life["customer_id"].nunique() > 100
    assert (life["remaining_days"] >= 0).all() and life["mrr_now"].gt(0).all()


def test_curves_png_and_json(env, tmp_path) -> None:
    png = tmp_path / "km.png"
    result = runner.invoke(app, ["curves", "--by", "industry", "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "Retention by industry" in result.output and "Log-rank test" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = runner.invoke(app, ["curves", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["summary"][0]["segment"] == "all" and payload["logrank"] is None


def test_cox_and_lifetime(env, tmp_path) -> None:
    cox = runner.invoke(app, ["cox", "--covariate", "plan", "--penalizer", "0.01"])
    assert cox.exit_code == 0, cox.output
    assert "Hazard ratios of churn" in cox.output and "plan=" in cox.output
    csv = tmp_path / "life.csv"
    life = runner.invoke(
        app, ["lifetime", "--method", "weibull", "--limit", "3", "--csv", str(csv)]
    )
    assert life.exit_code == 0, life.output
    assert "expected remaining lifetime mean" in life.output
    assert csv.read_text().startswith("customer_id,segment,tenure_days,remaining_days")


def test_bad_options(env) -> None:
    bad = runner.invoke(app, ["curves", "--by", "password"])
    assert bad.exit_code == 1 and "unknown segment attribute 'password'" in bad.output
    bad = runner.invoke(app, ["lifetime", "--method", "magic"])
    assert bad.exit_code != 0
    bad = runner.invoke(app, ["curves", "--alpha", "2"])
    assert bad.exit_code == 1 and "alpha" in bad.output
