"""bench/web.py: the whole web benchmark on a tiny demo home (live server, logins, pages,
ingestion over HTTP and direct), and its percentile helper."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_percentile_is_nearest_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import web

    values = [float(v) for v in range(1, 21)]  # 1..20
    assert web.percentile(values, 50) == 10.0
    assert web.percentile(values, 95) == 19.0
    assert web.percentile([7.0], 95) == 7.0


def test_web_benchmark_on_a_tiny_home(tmp_path: Path) -> None:
    out = tmp_path / "web.json"
    work = tmp_path / "work"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "web.py"),
            "--customers",
            "100",
            "--concurrency",
            "2",
            "--requests",
            "6",
            "--batches",
            "2",
            "--batch-size",
            "500",
            "--work",
            str(work),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "POST /v1/events" in done.stdout
    report = json.loads(out.read_text())
    pages = report["pages"]
    assert pages["dashboard_first_ms"] > 0
    assert pages["dashboard_first_state"] in ("fresh", "stale", "computing")
    assert pages["dashboard_fresh_after_s"] >= pages["dashboard_first_ms"] / 1000 - 0.1  # rounded
    for name in ("dashboard", "customers_list", "customer_360"):
        assert pages[name]["requests"] == 6
        assert 0 < pages[name]["p50_ms"] <= pages[name]["p95_ms"]
    assert sum(v["requests"] for v in pages["customers_list"]["variants"].values()) == 6
    ingestion = report["ingestion"]
    assert ingestion["rows"] == 1000
    assert ingestion["retry_skipped"] is True
    assert ingestion["http_events_per_s"] > 0 and ingestion["direct_events_per_s"] > 0
    assert ingestion["ratio"] == pytest.approx(
        ingestion["http_events_per_s"] / ingestion["direct_events_per_s"], abs=0.01
    )
    # the home's own event store is untouched: the appends went to the work copy
    from deltalake import DeltaTable

    home_rows = DeltaTable(str(work / "home" / "events")).to_pyarrow_table().num_rows
    copy_rows = DeltaTable(str(work / "events")).to_pyarrow_table().num_rows
    assert copy_rows == home_rows + 100 + 1000 + 100 + 1000  # warm-ups and both runs
