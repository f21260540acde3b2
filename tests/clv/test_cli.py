"""`keepwell clv` on small demo stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from keepwell.clv.cli import app
from tests.clv.conftest import cli_env

runner = CliRunner()


def test_top_subscription_ltv_on_saas(monkeypatch, saas_settings, tmp_path) -> None:
    cli_env(monkeypatch, saas_settings)
    csv = tmp_path / "ltv.csv"
    result = runner.invoke(app, ["top", "--limit", "5", "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    assert "Top customers by subscription LTV" in result.output and "$" in result.output
    assert csv.read_text().startswith("customer_id,currency,mrr_minor,remaining_months,ltv_minor")
    no_orders = runner.invoke(app, ["fit"])
    assert no_orders.exit_code == 1 and "no completed orders" in no_orders.output
    bad = runner.invoke(app, ["top", "--margin", "3"])
    assert bad.exit_code == 1 and "margin" in bad.output
    bad = runner.invoke(app, ["top", "--as-of", "soon"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output


@pytest.mark.slow
def test_fit_and_top_on_the_shop(monkeypatch, shop_settings, tmp_path) -> None:
    cli_env(monkeypatch, shop_settings)
    before = runner.invoke(app, ["top", "--kind", "orders"])
    if before.exit_code == 1:  # the first backend: nothing fitted yet
        assert "run `keepwell clv fit` first" in before.output
    fit = runner.invoke(app, ["fit"])
    assert fit.exit_code == 0, fit.output
    assert "BG/NBD" in fit.output and "Gamma-Gamma" in fit.output and "EUR" in fit.output
    csv = tmp_path / "clv.csv"
    top = runner.invoke(app, ["top", "--limit", "5", "--days", "30", "--csv", str(csv)])
    assert top.exit_code == 0, top.output
    assert "Top customers by 12-month CLV" in top.output and "€" in top.output
    values = pd.read_csv(csv)
    assert {"p_alive", "expected_purchases", "expected_spend", "clv_minor"} <= set(values.columns)
    assert values["p_alive"].between(0, 1).all() and values["clv_minor"].is_monotonic_decreasing
