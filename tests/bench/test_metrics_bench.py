"""bench/metrics.py: the raw-SQL and pandas suites on hand-computed events, the comparison, and
the whole benchmark at a tiny size (keepwell, raw SQL and pandas must agree)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The benchmark's helper modules (they import each other as top-level modules)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import metrics_compare
    import metrics_pandas
    import metrics_plan
    import metrics_sql

    return SimpleNamespace(
        compare=metrics_compare, pandas=metrics_pandas, plan=metrics_plan, sql=metrics_sql
    )


def _events(path: Path, rows: list[tuple[str, str, str]]) -> list[str]:
    """Write (customer_id, event, ISO UTC instant) rows as an event-store-like Parquet file."""
    table = pa.table(
        {
            "customer_id": [r[0] for r in rows],
            "event": [r[1] for r in rows],
            "occurred_at": pa.array(
                pd.to_datetime([r[2] for r in rows], utc=True), pa.timestamp("us", tz="UTC")
            ),
        }
    )
    pq.write_table(table, path)
    return [str(path)]


# Berlin is UTC+1 in winter: 2026-01-31 23:30 UTC is 2026-02-01 00:30 local.
EVENTS = [
    ("a", "login", "2025-12-15T10:00:00Z"),  # before the report: a is not new in January
    ("a", "login", "2026-01-05T10:00:00Z"),
    ("a", "export", "2026-01-05T11:00:00Z"),  # same day: one active day, two events
    ("a", "login", "2026-01-31T23:30:00Z"),  # February in Berlin
    ("b", "login", "2026-01-20T09:00:00Z"),  # b: first ever in January
    ("b", "export", "2026-03-02T09:00:00Z"),  # b: away in February, back in March
]


def _run_both(bench: SimpleNamespace, tmp_path: Path) -> tuple[object, dict, dict]:
    plan = bench.plan.Plan(
        start=date(2026, 1, 1),
        end=date(2026, 4, 1),
        timezone="Europe/Berlin",
        event_types=("export", "login"),
    )
    files = _events(tmp_path / "events.parquet", EVENTS)
    bench.sql.run_suite(plan, files, tmp_path / "sql")
    bench.pandas.run_suite(plan, files, tmp_path / "pandas")
    read = {
        side: {
            n: pd.read_parquet(tmp_path / side / f"{n}.parquet") for n in bench.plan.EVENT_METRICS
        }
        for side in ("sql", "pandas")
    }
    return plan, read["sql"], read["pandas"]


def test_sql_and_pandas_suites_give_hand_computed_values(
    bench: SimpleNamespace, tmp_path: Path
) -> None:
    plan, sql, pandas_ = _run_both(bench, tmp_path)
    for result in (sql, pandas_):
        life = result["lifecycle"].set_index("period")
        # January: a returning (December), b new; February: a returning, b dormant;
        # March: b resurrecting, a dormant
        assert life.loc["2026-01", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
            1,
            1,
            0,
            0,
        ]
        assert life.loc["2026-02", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
            0,
            1,
            0,
            1,
        ]
        assert life.loc["2026-03", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
            0,
            0,
            1,
            1,
        ]
        active = result["active_customers"].set_index("period")
        assert active.loc["2026-01", "period_actives"] == 2
        assert active.loc["2026-01", "dau"] == pytest.approx(2 / 31)  # a on the 5th, b on the 20th
        assert active.loc["2026-02", "period_actives"] == 1
        features = result["features"].set_index("customer_id")
        # as of 2026-04-01: b's export on 2026-03-02 is 30 days back (outside the last 28)
        assert features.loc["b", "days_since_last_event"] == 30
        assert features.loc["b", "events_prev_28"] == 1
        assert features.loc["b", "events_28"] == 0
    for name in bench.plan.EVENT_METRICS:
        # pandas as the reference: it lists a customer with no recent events with zero counts
        check = bench.compare.compare(name, pandas_[name], sql[name], plan, against="sql")
        assert check.ok, check.line()


def test_compare_reports_the_exact_difference(bench: SimpleNamespace, tmp_path: Path) -> None:
    plan, sql, _ = _run_both(bench, tmp_path)
    changed = sql["active_customers"].copy()
    changed.loc[changed["period"] == "2026-02", "mau"] += 1
    check = bench.compare.compare(
        "active_customers", sql["active_customers"], changed, plan, against="sql"
    )
    assert not check.ok
    assert "mau differs in 1 of 3 rows" in check.detail
    assert "period=2026-02: keepwell 1, sql 2" in check.detail

    fewer = sql["lifecycle"].iloc[1:]
    check = bench.compare.compare("lifecycle", sql["lifecycle"], fewer, plan, against="sql")
    assert not check.ok
    assert "1 rows only in keepwell (e.g. period=2026-01)" in check.detail


def test_compare_features_treats_a_missing_customer_as_no_events(
    bench: SimpleNamespace, tmp_path: Path
) -> None:
    plan, sql, pandas_ = _run_both(bench, tmp_path)
    keepwell = pandas_["features"].copy()
    extra = {c: 0 for c in keepwell.columns}
    extra.update(customer_id="c", days_since_last_event=None)
    keepwell = pd.concat([keepwell, pd.DataFrame([extra])], ignore_index=True)
    assert bench.compare.compare("features", keepwell, sql["features"], plan, against="sql").ok
    keepwell.loc[keepwell["customer_id"] == "c", "events_28"] = 3
    check = bench.compare.compare("features", keepwell, sql["features"], plan, against="sql")
    assert not check.ok
    assert "customer_id=c: keepwell 3, sql 0" in check.detail


@pytest.mark.slow
def test_benchmark_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    """2,000 customers in Berlin: keepwell, raw SQL and pandas agree on every event metric,
    and the appended day shows in the next report."""
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "metrics.py"),
            "--customers",
            "2000",
            "--timezone",
            "Europe/Berlin",
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    checks = report["checks"]
    assert {(c["metric"], c["against"]) for c in checks} == {
        (m, a)
        for m in report["keepwell"]["rows"]
        if m in _event_metrics()
        for a in ("sql", "pandas")
    }
    assert all(c["ok"] for c in checks), [c["detail"] for c in checks if not c["ok"]]
    assert report["keepwell"]["reads_rollup"] is True
    assert report["report_all"]["charts"] >= 5 and report["report_all"]["html_bytes"] > 10_000
    assert report["goals"]["speedup_report_all"] > 0
    assert report["incremental"]["refresh_mode"] == "incremental"
    assert report["goals"]["incremental_ok"] is True
    assert not (tmp_path / "work").exists()  # deleted without --keep


def _event_metrics() -> set[str]:
    return {
        "active_customers",
        "lifecycle",
        "feature_adoption",
        "usage_frequency",
        "event_retention",
        "features",
    }
