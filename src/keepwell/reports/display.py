"""Turn metric results into what a person reads: percentages, money, short headers."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from keepwell.money import format_money

HIDDEN = {"period_start", "period_end", "cohort_start", "bucket_order"}
"""Machine columns left out of human tables (the ``period``/``cohort`` label says the same)."""


MONEY = {
    "mrr": {
        "mrr_start", "mrr_end", "new", "reactivation", "expansion", "contraction", "churned",
        "net_new_mrr", "arpa",
    },
    "nrr": {"mrr_start", "mrr_end", "mrr_retained"},
    "ltv": {"mrr_end", "arpa", "ltv"},
    "cost_of_churn": {"profit_per_customer", "lost_profit", "churned_mrr", "lost_lifetime_value"},
    "repeat_revenue": {"revenue", "repeat_revenue"},
    "cohorts": {"mrr_start", "mrr"},
    "features": {"mrr_minor"},
}  # fmt: skip
"""Columns holding money in minor units, per metric (shown in the row's currency)."""


def is_rate(column: str) -> bool:
    """Columns holding a share (shown as a percentage)."""
    return (
        column.endswith(("_rate", "_share", "retention", "_ratio_pct"))
        or column in {"stickiness", "nrr", "grr", "share"}
        or column.startswith("share_")
    )


def header(column: str) -> str:
    """``total_churn_rate`` -> ``total churn rate``; ``mrr_start_minor`` -> ``mrr start``."""
    if column.endswith("_minor"):
        column = column[: -len("_minor")]
    return column.replace("_", " ")


def cell(column: str, value: Any, row: dict[str, Any], *, money: bool = False) -> str:
    """One value as text, knowing its column (and the row's currency for money)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NaT:
        return ""
    if is_rate(column) and isinstance(value, int | float):
        return f"{value:.1%}"
    if (money or column.endswith("_minor")) and isinstance(value, int | float):
        return format_money(round(value), row.get("currency") or "USD")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d")
    return str(value)


def rows_for_people(
    df: pd.DataFrame, *, metric: str | None = None
) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of ``df`` (a ``metric``'s rows) for a person to read."""
    columns = [c for c in df.columns if c not in HIDDEN]
    money = MONEY.get(metric or "", set())
    records = df.to_dict("records")
    body = [[cell(c, rec[c], rec, money=c in money) for c in columns] for rec in records]
    return [header(c) for c in columns], body
