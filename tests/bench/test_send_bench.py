"""bench/send.py at a tiny size: both senders deliver everything and the figures are written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "send.py"


def test_send_bench_tiny(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--messages", "30", "--concurrency", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio keepwell/raw" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["messages"] == 30 and figures["concurrency"] == 2
    assert figures["renderer"].startswith("keepwell.campaigns") or "Jinja2" in figures["renderer"]
    assert figures["keepwell_per_s"] > 0 and figures["raw_per_s"] > 0
    assert abs(figures["ratio"] - figures["raw_s"] / figures["keepwell_s"]) < 1e-9
    assert len(figures["raw_rounds_s"]) == 2


def test_send_bench_rejects_bad_arguments(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--messages", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--messages must be >= 1" in result.stderr
