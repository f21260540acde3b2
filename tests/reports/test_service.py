"""Report service: parsing user options, running metrics by name, formatting for people."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from keepwell.errors import InvalidInput
from keepwell.metrics.registry import TITLES, all_metrics
from keepwell.reports import display, service
from tests.metrics.conftest import subs


def test_static_titles_match_the_registry() -> None:
    assert list(TITLES) == list(all_metrics())
    assert {n: s.title for n, s in all_metrics().items()} == TITLES


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["industry=travel,hospitality"], {"industry": ["travel", "hospitality"]}),
        (["tag=vip", "tag=beta"], {"tag": ["vip", "beta"]}),
        ([" country = DE "], {"country": ["DE"]}),
    ],
)
def test_parse_filters(items, expected) -> None:
    assert service.parse_filters(items) == expected


@pytest.mark.parametrize("bad", ["industry", "=travel", "industry=", "industry= , "])
def test_parse_filters_rejects_bad_input(bad) -> None:
    with pytest.raises(InvalidInput, match="bad segment filter"):
        service.parse_filters([bad])


def test_parse_params_types() -> None:
    got = service.parse_params(["margin=0.7", "grace_days=0", "as_of=2026-03-01", "unit=user"])
    assert got == {"margin": 0.7, "grace_days": 0, "as_of": date(2026, 3, 1), "unit": "user"}
    with pytest.raises(InvalidInput, match="bad --param"):
        service.parse_params(["margin"])


def test_run_metric_by_name_and_errors(make_sources) -> None:
    src = make_sources({"subscriptions": subs(("a", "2026-01-01", "2026-02-10", 1000))})
    df = service.run_metric(src, "churn", start=date(2026, 2, 1), end=date(2026, 3, 1))
    assert df.loc[0, "start_lost"] == 1
    with pytest.raises(InvalidInput, match="unknown metric 'nope'"):
        service.run_metric(src, "nope", start=date(2026, 2, 1), end=date(2026, 3, 1))
    with pytest.raises(InvalidInput, match="has no parameter"):
        service.run_metric(src, "churn", start=date(2026, 2, 1), end=date(2026, 3, 1), colour=1)
    with pytest.raises(InvalidInput, match="the range is empty"):
        service.run_metric(src, "churn", start=date(2026, 3, 1), end=date(2026, 2, 1))
    records = service.to_records(df)
    assert records[0]["period"] == "2026-02" and records[0]["churn_rate"] == 1.0


def test_display_formats_rates_money_and_hides_machine_columns() -> None:
    df = pd.DataFrame(
        {
            "currency": ["EUR"],
            "period": ["2026-02"],
            "period_start": [pd.Timestamp("2026-02-01")],
            "mrr_end": [123456],
            "churn_rate": [0.0333],
            "customers_end": [1500],
            "nrr": [None],
        }
    )
    headers, rows = display.rows_for_people(df, metric="mrr")
    assert headers == ["currency", "period", "mrr end", "churn rate", "customers end", "nrr"]
    assert rows == [["EUR", "2026-02", "€1,234.56", "3.3%", "1,500", ""]]
