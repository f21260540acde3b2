"""`keepwell import <kind> FILE` against an isolated, migrated database: exit codes and output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from keepwell.billing.models import Subscription
from keepwell.cli import app
from keepwell.customers.models import Customer
from keepwell.db import make_engine, session_scope
from tests.imports.files import CUSTOMER_HEADER, write_csv

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "mappings"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated_database_url: str) -> Path:
    """A keepwell home on a fresh database, migrated with `keepwell db upgrade`."""
    home = tmp_path / "home"
    monkeypatch.setenv("KEEPWELL_HOME", str(home))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", isolated_database_url)
    upgrade = runner.invoke(app, ["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    return home


def _words(output: str) -> str:
    """The output with line wrapping undone (Rich wraps at 80 columns under the runner)."""
    return " ".join(output.split())


def _count(model: type) -> int:
    engine = make_engine(_database_url())
    try:
        with session_scope(engine) as session:
            return session.scalar(select(func.count()).select_from(model))
    finally:
        engine.dispose()


def _database_url() -> str:
    return os.environ["KEEPWELL_DATABASE_URL"]


def _invoke(*args: str):
    result = runner.invoke(app, ["import", *args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_import_customers_prints_the_summary(home: Path, tmp_path: Path) -> None:
    rows = [["c1", "One", "2026-01-01"], ["c2", "Two", "2026-01-02"]]
    path = write_csv(tmp_path / "customers.csv", CUSTOMER_HEADER, rows)

    result = _invoke("customers", str(path))
    assert result.exit_code == 0, result.output
    words = _words(result.output)
    for column in ("rows", "inserted", "updated", "unchanged", "rejected"):
        assert column in words
    assert "│ 2 │ 2 │ 0 │ 0 │ 0 │" in words
    assert _count(Customer) == 2

    again = _invoke("customers", str(path))
    assert again.exit_code == 0
    assert "│ 2 │ 0 │ 0 │ 2 │ 0 │" in _words(again.output)


def test_rejected_rows_exit_zero_and_point_to_the_rejects_file(home: Path, tmp_path: Path) -> None:
    rows = [["c1", "One", "2026-01-01"], ["c2", "Two", "someday"]]
    path = write_csv(tmp_path / "customers.csv", CUSTOMER_HEADER, rows)

    result = _invoke("customers", str(path))
    assert result.exit_code == 0, result.output
    words = _words(result.output)
    assert "1 row(s) rejected; the other rows were imported." in words
    assert "row 2, field 'signup_at': expected ISO 8601 date/time" in words
    assert "Rejected rows with reasons:" in words
    [rejects] = list((home / "rejects").glob("customers-*-rejects.csv"))
    assert "someday" in rejects.read_text(encoding="utf-8")
    assert _count(Customer) == 1


def test_strict_exits_one_and_imports_nothing(home: Path, tmp_path: Path) -> None:
    rows = [["c1", "One", "2026-01-01"], ["c2", "Two", "someday"]]
    path = write_csv(tmp_path / "customers.csv", CUSTOMER_HEADER, rows)

    result = _invoke("customers", str(path), "--strict")
    assert result.exit_code == 1
    assert "error: 1 of 2 row(s) rejected, nothing imported (strict)" in _words(result.output)
    assert _count(Customer) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "customers.csv is empty (0 bytes)"),
        (
            b"external_id,name\nc1,One\n",
            "customers file is missing required column(s): signup_at",
        ),
        (
            b"external_id,name,signup_at\nc1,M\xfcller,2026-01-01\n",
            "customers.csv: line 2 is not valid utf-8",
        ),
    ],
)
def test_whole_file_errors_exit_one_with_one_clear_line(
    home: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(content)

    result = _invoke("customers", str(path))
    assert result.exit_code == 1
    words = _words(result.output)
    assert words.startswith(f"error: {message}")  # no progress bar before the error
    assert "hint:" in words
    assert _count(Customer) == 0


def test_encoding_option_and_missing_file(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"external_id,name,signup_at\nc1,M\xfcller,2026-01-01\n")
    assert _invoke("customers", str(path), "--encoding", "latin-1").exit_code == 0

    missing = _invoke("customers", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1
    assert "error: file not found" in _words(missing.output)


def test_subscriptions_with_mapping_map_and_currency(home: Path, tmp_path: Path) -> None:
    ids = ["cus_QAcme01", "cus_QBeta02", "cus_QGamma3", "cus_QDelta4", "cus_QEps05", "cus_QZeta06"]
    customers = write_csv(
        tmp_path / "customers.csv", CUSTOMER_HEADER, [[i, i, "2025-01-01"] for i in ids]
    )
    assert _invoke("customers", str(customers)).exit_code == 0
    sample = DOCS / "stripe-subscriptions-sample.csv"
    mapping = DOCS / "stripe-subscriptions.toml"

    result = _invoke(
        "subscriptions",
        str(sample),
        "--mapping",
        str(mapping),
        "--map",
        "cancel_reason=Customer Description",
        "--currency",
        "EUR",
    )
    assert result.exit_code == 0, result.output
    words = _words(result.output)
    assert "│ 6 │ 5 │ 0 │ 0 │ 1 │" in words
    assert "field 'billing_period': expected one of: month, quarter, year" in words
    engine = make_engine(_database_url())
    with session_scope(engine) as session:
        reasons = set(session.scalars(select(Subscription.cancel_reason)))
    engine.dispose()
    assert "Acme Travel" in reasons

    bad_map = _invoke("subscriptions", str(sample), "--map", "plan")
    assert bad_map.exit_code == 1
    assert "error: bad --map 'plan'" in _words(bad_map.output)


def test_unmigrated_database_fails_cleanly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated_database_url: str
) -> None:
    monkeypatch.setenv("KEEPWELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", isolated_database_url)
    path = write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, [["c1", "One", "2026-01-01"]])

    result = _invoke("customers", str(path))
    assert result.exit_code == 1
    assert "no keepwell schema yet" in _words(result.output)


def test_import_events_uses_the_known_customers(home: Path, tmp_path: Path) -> None:
    customers = write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, [["c1", "One", "2026-01-01"]])
    assert _invoke("customers", str(customers)).exit_code == 0
    events = write_csv(
        tmp_path / "events.csv",
        ["customer_id", "event", "occurred_at"],
        [["c1", "login", "2026-01-02T10:00:00Z"], ["ghost", "login", "2026-01-02T10:00:00Z"]],
    )

    result = _invoke("events", str(events))
    assert result.exit_code == 0, result.output
    words = _words(result.output)
    assert "events from" in words
    assert "1 row(s) rejected" in words
    assert "ghost" in words

    again = _invoke("events", str(events))
    assert again.exit_code == 0
    assert "imported before" in _words(again.output)
