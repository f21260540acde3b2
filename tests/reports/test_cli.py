"""`keepwell report`: one metric as table/JSON/CSV and the full HTML report, on a tiny demo."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from keepwell.cli import app
from keepwell.config import Settings
from keepwell.demo.loader import load_demo

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> str:
    home = tmp_path_factory.mktemp("home")
    load_demo(Settings(home=home), customers=150, months=8, seed=3)
    return str(home)


@pytest.fixture
def env(monkeypatch, demo_home):
    monkeypatch.setenv("KEEPWELL_HOME", demo_home)
    monkeypatch.setenv("COLUMNS", "200")


def test_report_churn_json_and_csv(env) -> None:
    result = runner.invoke(app, ["report", "churn", "--format", "json", "--period", "month"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 12 and {"period", "churn_rate", "total_churn_rate"} <= set(rows[0])
    csv = runner.invoke(app, ["report", "mrr", "--format", "csv", "--by", "industry"])
    assert csv.exit_code == 0, csv.output
    assert csv.output.splitlines()[0].startswith("industry,currency,period")


def test_report_table_and_bad_options(env) -> None:
    ok = runner.invoke(app, ["report", "churn", "--segment", "industry=travel,hospitality"])
    assert ok.exit_code == 0, ok.output
    assert "churn" in ok.output and "%" in ok.output  # headers may wrap on narrow consoles
    bad = runner.invoke(app, ["report", "churn", "--by", "password"])
    assert bad.exit_code == 1 and "unknown by field 'password'" in bad.output
    assert "Traceback" not in bad.output
    bad_date = runner.invoke(app, ["report", "churn", "--from", "yesterday"])
    assert bad_date.exit_code != 0 and "YYYY-MM-DD" in bad_date.output


def test_report_all_writes_html_and_pngs(env, tmp_path) -> None:
    html, png = tmp_path / "r.html", tmp_path / "png"
    result = runner.invoke(app, ["report", "all", "--html", str(html), "--png", str(png)])
    assert result.exit_code == 0, result.output
    text = html.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") >= 8
    assert "Retention report" in text and "<script" not in text
    pngs = sorted(png.glob("*.png"))
    assert len(pngs) >= 8
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "customer churn" in result.output
