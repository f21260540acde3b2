"""Whole-file problems raise ImportFileError and write nothing; file formats that work."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.errors import ImportFileError, InvalidInput
from keepwell.imports.mapping import ColumnMapping
from keepwell.imports.models import ImportRun
from tests.imports.conftest import Run
from tests.imports.files import CUSTOMER_HEADER, write_csv


def _count(db_session: Session, model: type) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def test_missing_required_column_names_it_and_lists_expected(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", ["external_id", "Name"], [["c1", "One"]])
    with pytest.raises(ImportFileError) as caught:
        run("customers", path)

    message = caught.value.message
    assert "missing required column(s): name, signup_at" in message
    assert "expected columns external_id, name, email" in message
    assert "--map name='Name'" in (caught.value.hint or "")
    assert _count(db_session, Customer) == 0
    assert _count(db_session, ImportRun) == 0


def test_empty_file_is_an_error(db_session: Session, run: Run, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ImportFileError, match=r"empty \(0 bytes\)") as caught:
        run("customers", path)
    assert "external_id, name" in (caught.value.hint or "")
    assert _count(db_session, ImportRun) == 0


def test_header_only_imports_zero_rows(db_session: Session, run: Run, tmp_path: Path) -> None:
    summary = run("customers", write_csv(tmp_path / "h.csv", CUSTOMER_HEADER, []))

    assert (summary.rows, summary.inserted, summary.rejected) == (0, 0, 0)
    assert "the file has a header but no data rows" in summary.notes
    assert _count(db_session, ImportRun) == 1


def test_undecodable_bytes_name_the_line_and_suggest_latin1(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    rows = [["c1", "Plain", "2026-01-01"], ["c2", "Müller", "2026-01-01"]]
    path = write_csv(tmp_path / "latin.csv", CUSTOMER_HEADER, rows, encoding="latin-1")
    with pytest.raises(ImportFileError) as caught:
        run("customers", path)
    assert "line 3 is not valid utf-8" in caught.value.message
    assert "--encoding latin-1" in (caught.value.hint or "")
    assert _count(db_session, Customer) == 0

    summary = run("customers", path, encoding="latin-1")
    assert summary.inserted == 2
    assert db_session.scalar(select(Customer.name).where(Customer.external_id == "c2")) == "Müller"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_quotes_and_bom(
    db_session: Session, run: Run, tmp_path: Path, delimiter: str
) -> None:
    rows = [["c1", f'Say "hi"{delimiter} then\nleave', "2026-01-01"]]
    path = write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, rows, delimiter=delimiter, bom=True)
    summary = run("customers", path)

    assert summary.inserted == 1, summary.rejects
    name = db_session.scalar(select(Customer.name))
    assert name == f'Say "hi"{delimiter} then\nleave'


def test_utf16_with_bom_and_gzip(db_session: Session, run: Run, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "c16.csv", CUSTOMER_HEADER, [["c1", "Ünïcode", "2026-01-01"]], encoding="utf-16"
    )
    assert run("customers", path).inserted == 1
    packed = tmp_path / "c.csv.gz"
    plain = write_csv(tmp_path / "c2.csv", CUSTOMER_HEADER, [["c2", "Zip", "2026-01-01"]])
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert run("customers", packed).inserted == 1


def test_row_with_wrong_field_count_is_rejected_with_its_row_number(
    run: Run, tmp_path: Path
) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "external_id,name,signup_at\n"
        'c1,"multi\nline",2026-01-01\n'
        "c2,Two,2026-01-01,extra\n"
        "\n"
        "c3,Three,2026-01-01\n",
        encoding="utf-8",
    )
    summary = run("customers", path)

    assert (summary.rows, summary.inserted, summary.rejected) == (3, 2, 1)
    reject = summary.rejects[0]
    assert reject.row == 2
    assert reject.reason.startswith("has 4 fields but the header has 3")


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [("widgets", "unknown import kind 'widgets'"), ("events", "event store")],
)
def test_unknown_kind(run: Run, tmp_path: Path, kind: str, pattern: str) -> None:
    path = write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, [])
    with pytest.raises(ImportFileError, match=pattern):
        run(kind, path)


def test_mapping_naming_absent_or_unknown_columns(run: Run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", ["id", "Name", "Signed up"], [["c1", "A", "2026-01-01"]])
    absent = ColumnMapping(columns={"external_id": "ID", "name": "Name", "signup_at": "Signed up"})
    with pytest.raises(ImportFileError, match=r"\['ID'\] that the file does not have"):
        run("customers", path, mapping=absent)
    unknown = ColumnMapping(columns={"external_id": "id", "colour": "Name"})
    with pytest.raises(ImportFileError, match=r"names \['colour'\], which are not customers"):
        run("customers", path, mapping=unknown)


def test_duplicate_header_and_double_mapping(run: Run, tmp_path: Path) -> None:
    dup = write_csv(tmp_path / "d.csv", ["external_id", "name", "name", "signup_at"], [])
    with pytest.raises(ImportFileError, match=r"\['name'\] appear more than once"):
        run("customers", dup)
    both = write_csv(tmp_path / "b.csv", ["id", "external_id", "name", "signup_at"], [])
    with pytest.raises(ImportFileError, match="two columns would both be 'external_id'"):
        run("customers", both, mapping=ColumnMapping(columns={"external_id": "id"}))


def test_bad_options_and_paths(run: Run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, [])
    with pytest.raises(InvalidInput, match="unknown time zone 'Mars/Base'"):
        run("customers", path, timezone="Mars/Base")
    with pytest.raises(InvalidInput, match="unknown currency 'XYZ'"):
        run("customers", path, default_currency="XYZ")
    with pytest.raises(InvalidInput, match="unknown encoding 'klingon'"):
        run("customers", path, encoding="klingon")
    with pytest.raises(ImportFileError, match="is a directory"):
        run("customers", tmp_path)
    with pytest.raises(FileNotFoundError):
        run("customers", tmp_path / "missing.csv")


def test_unreadable_parquet(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(ImportFileError, match="not a readable Parquet file"):
        run("customers", path)
