"""`keepwell risk ...`: the commands on a small demo business, and their one-line errors."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from keepwell import migrate
from keepwell.config import Settings
from keepwell.db import engine_from_settings
from keepwell.demo.loader import load_demo
from keepwell.risk.cli import app as risk_app

runner = CliRunner()
root = typer.Typer()
root.add_typer(risk_app, name="risk")


def invoke(*args: str):
    return runner.invoke(root, ["risk", *args])


@pytest.fixture
def empty_home(tmp_path, monkeypatch) -> Settings:
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    engine = engine_from_settings(settings)
    migrate.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("KEEPWELL_HOME", str(settings.home))
    monkeypatch.setenv("COLUMNS", "200")
    return settings


def test_errors_are_one_line(empty_home) -> None:
    for args, message in (
        (("score",), "no trained risk model"),
        (("worklist",), "no risk scores yet"),
        (("train",), "no data to observe"),
    ):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output
    bad = invoke("score", "--as-of", "yesterday")
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
    assert invoke("models").output.startswith("No risk model yet")
    assert invoke("worklist", "--limit", "0").exit_code != 0


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> str:
    home = tmp_path_factory.mktemp("risk-demo")
    load_demo(Settings(home=home), customers=400, months=10, seed=5)
    return str(home)


@pytest.mark.slow
def test_train_evaluate_score_worklist(demo_home, monkeypatch) -> None:
    monkeypatch.setenv("KEEPWELL_HOME", demo_home)
    monkeypatch.setenv("COLUMNS", "200")
    trained = invoke("train", "--test-months", "2")
    assert trained.exit_code == 0, trained.output
    assert "Trained risk model" in trained.output and "top-decile lift" in trained.output
    assert "days since last activity" in trained.output and "Saved to" in trained.output

    ev = invoke("evaluate", "--test-months", "2", "--json")
    assert ev.exit_code == 0, ev.output
    data = json.loads(ev.output[ev.output.index("{") :])
    assert set(data["metrics"]) == {"lightgbm", "logistic", "recency", "base_rate"}
    assert len(data["calibration"]["lightgbm"]) == 10
    table = invoke("evaluate", "--test-months", "2")
    assert "Calibration of LightGBM" in table.output and "observed churn" in table.output

    scored = invoke("score")
    assert scored.exit_code == 0, scored.output
    assert "active customers as of" in scored.output and "Revenue at risk" in scored.output
    again = invoke("score")
    assert "Replaced" in again.output  # same day, same model: idempotent

    work = invoke("worklist", "--limit", "5")
    assert work.exit_code == 0, work.output
    assert "Work list as of" in work.output and "revenue" in work.output  # headers may wrap
    assert work.output.count("$") >= 5
    models = invoke("models")
    assert models.exit_code == 0 and "test AUC" in models.output
    too_many = invoke("train", "--test-months", "40")
    assert too_many.exit_code == 1 and "cannot split" in too_many.output
