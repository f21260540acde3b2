"""Row-level problems: reasons, row numbers, the rejects file, and large files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.imports.models import ImportRun
from keepwell.imports.parse import EXPECTED_TIMESTAMP
from keepwell.imports.service import MAX_SUMMARY_REJECTS
from tests.imports.conftest import Run
from tests.imports.files import CUSTOMER_HEADER, write_csv


def _rejects_file(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("yesterday", EXPECTED_TIMESTAMP),
        ("2026-13-01", "not a valid calendar date/time (years 1678-2261 are supported)"),
        ("01/03/2026", EXPECTED_TIMESTAMP),
        ("2026-03-29T02:30:00", "does not exist or is ambiguous in Europe/Berlin"),
    ],
)
def test_bad_timestamps(run: Run, tmp_path: Path, value: str, reason: str) -> None:
    path = write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, [["c1", "One", value]])
    summary = run("customers", path, timezone="Europe/Berlin")

    assert summary.rejected == 1
    reject = summary.rejects[0]
    assert (reject.row, reject.field, reject.value) == (1, "signup_at", value)
    assert reason in reject.reason


def test_timestamp_offsets_and_precision(db_session: Session, run: Run, tmp_path: Path) -> None:
    rows = [
        ["a", "A", "2026-03-01T09:30:00Z"],
        ["b", "B", "2026-03-01T09:30:00.123456789+0530"],
        ["c", "C", "2026-10-25 01:59"],  # naive: read in the import's zone
    ]
    run("customers", write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, rows), timezone="Asia/Tokyo")

    stored = dict(db_session.execute(select(Customer.external_id, Customer.signup_at)).all())
    assert stored["a"].isoformat() == "2026-03-01T09:30:00+00:00"
    assert stored["b"].isoformat() == "2026-03-01T04:00:00.123456+00:00"
    assert stored["c"].isoformat() == "2026-10-24T16:59:00+00:00"


def test_duplicate_external_id_rejects_the_later_row(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    rows = [["c1", "First", "2026-01-01"], ["c2", "x", "2026-01-01"], ["c1", "Again", "2026-01-01"]]
    summary = run("customers", write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, rows))

    assert (summary.inserted, summary.rejected) == (2, 1)
    reject = summary.rejects[0]
    assert (reject.row, reject.field) == (3, "external_id")
    assert reject.reason == "duplicate external_id: first seen in row 1"
    assert db_session.scalar(select(Customer.name).where(Customer.external_id == "c1")) == "First"


def test_required_empty_and_too_long(run: Run, tmp_path: Path) -> None:
    rows = [[" ", "A", "2026-01-01"], ["c2", "n" * 256, "2026-01-01"]]
    summary = run("customers", write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, rows))

    assert [(r.row, r.field, r.reason) for r in summary.rejects] == [
        (1, "external_id", "required value is empty"),
        (2, "name", "too long: 256 characters, at most 255 allowed"),
    ]


def test_row_with_several_problems_counts_once_and_lists_all(
    run: Run, tmp_path: Path, rejects_dir: Path
) -> None:
    header = [*CUSTOMER_HEADER, "email", "country", "extra"]
    rows = [
        ["ok", "Fine", "2026-01-01", None, None, "kept"],
        ["bad", "", "soon", "nope", "XX", "k"],
    ]
    summary = run("customers", write_csv(tmp_path / "c.csv", header, rows))

    assert (summary.rows, summary.inserted, summary.rejected) == (2, 1, 1)
    assert sorted(r.field for r in summary.rejects) == ["country", "email", "name", "signup_at"]
    assert summary.rejects_path is not None
    assert summary.rejects_path.parent == rejects_dir
    assert summary.rejects_path.name.startswith("customers-")
    assert summary.rejects_path.name.endswith("-rejects.csv")
    lines = _rejects_file(summary.rejects_path)
    assert len(lines) == 1
    line = lines[0]
    assert list(line)[:3] == ["row", "field", "reason"]
    assert line["row"] == "2"
    assert line["field"] == "name; email; country; signup_at"  # schema order
    assert EXPECTED_TIMESTAMP in line["reason"]
    assert (line["external_id"], line["signup_at"], line["extra"]) == ("bad", "soon", "k")
    assert any("ignored column(s)" in n and "extra" in n for n in summary.notes)


@pytest.mark.slow
def test_one_bad_row_among_ten_thousand(db_session: Session, run: Run, tmp_path: Path) -> None:
    rows = [[f"c{i}", f"Customer {i}", "2026-01-01"] for i in range(10_000)]
    rows[6_543][2] = "2026-02-31"
    summary = run("customers", write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, rows))

    assert (summary.rows, summary.inserted, summary.rejected) == (10_000, 9_999, 1)
    assert [(r.row, r.field, r.value) for r in summary.rejects] == [
        (6_544, "signup_at", "2026-02-31")
    ]
    assert db_session.scalar(select(func.count()).select_from(Customer)) == 9_999
    assert len(_rejects_file(summary.rejects_path)) == 1


def test_summary_keeps_the_first_rejects_and_the_file_has_all(
    run: Run, tmp_path: Path, db_session: Session
) -> None:
    rows = [[f"c{i}", f"C{i}", "bad"] for i in range(MAX_SUMMARY_REJECTS + 200)]
    summary = run("customers", write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, rows))

    assert summary.rejected == MAX_SUMMARY_REJECTS + 200
    assert len(summary.rejects) == MAX_SUMMARY_REJECTS
    assert summary.rejects[0].row == 1
    assert len(_rejects_file(summary.rejects_path)) == MAX_SUMMARY_REJECTS + 200
    run_row = db_session.scalars(select(ImportRun)).one()
    assert run_row.rejected == MAX_SUMMARY_REJECTS + 200
    assert run_row.rejects_path == str(summary.rejects_path)


def test_values_the_database_cannot_hold_are_rejected(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, object]
) -> None:
    header = ["external_id", "customer_id", "ordered_at", "amount_minor", "items", "category"]
    rows = [
        ["o1", "cus_a", "2026-01-01", "100", "2147483648", None],
        ["o2", "cus_a", "2026-01-01", "100", "1", "bo\x00oks"],
        ["o3", "cus_a", "2026-01-01", "123456789012345678", "1", None],
    ]
    summary = run("orders", write_csv(tmp_path / "o.csv", header, rows))

    assert (summary.inserted, summary.rejected) == (1, 2)
    assert [(r.row, r.field, r.reason) for r in summary.rejects] == [
        (1, "items", "must be at most 2147483647"),
        (2, "category", "contains a NUL character (byte 0)"),
    ]
