"""`keepwell events info|compact|vacuum` on the store of KEEPWELL_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from keepwell.cli import app
from keepwell.config import Settings
from keepwell.events.store import EventStore
from tests.events.conftest import make_events

runner = CliRunner()


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> EventStore:
    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "home"))
    return EventStore.from_settings(Settings(home=tmp_path / "home"))


def test_info_on_an_empty_store(home: EventStore) -> None:
    result = runner.invoke(app, ["events", "info"])
    assert result.exit_code == 0, result.output
    assert "no events imported yet" in result.output


def test_info_compact_vacuum(home: EventStore) -> None:
    home.append(make_events(1500))
    home.append(make_events(10, start=1500))
    result = runner.invoke(app, ["events", "info"])
    assert result.exit_code == 0, result.output
    for text in ("1,510", "files", "2026-01-01T00:00:00+00:00", "2026-01-02T01:09:00+00:00"):
        assert text in result.output
    result = runner.invoke(app, ["events", "compact"])
    assert result.exit_code == 0, result.output
    assert "Compacted 1,510 events: 2 file(s)" in result.output
    assert "1 file(s)" in result.output
    assert runner.invoke(app, ["events", "compact"]).output.strip() == "Nothing to compact."
    result = runner.invoke(app, ["events", "vacuum"])
    assert "Deleted 0 file(s) unused for more than 168 hour(s)" in result.output
    result = runner.invoke(app, ["events", "vacuum", "--retention-hours", "0"])
    assert result.exit_code == 0, result.output
    assert "Deleted 2 file(s)" in result.output
    assert home.count() == 1510


def test_negative_retention_is_refused(home: EventStore) -> None:
    result = runner.invoke(app, ["events", "vacuum", "--retention-hours", "-1"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
