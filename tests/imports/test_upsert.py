"""Idempotent upsert, atomicity (failure midway leaves nothing) and strict mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell import migrate
from keepwell.billing.models import Invoice
from keepwell.customers.models import Customer, Tag
from keepwell.db import make_engine, session_scope
from keepwell.errors import InvalidInput
from keepwell.imports import service, upsert
from keepwell.imports.models import ImportRun
from keepwell.imports.service import import_file
from keepwell.users.models import StaffUser
from tests.imports.conftest import Run
from tests.imports.files import CUSTOMER_HEADER, write_csv

HEADER = [*CUSTOMER_HEADER, "email", "owner_email", "tags", "attr_plan"]


def _rows(n: int) -> list[list[Any]]:
    return [
        [f"c{i}", f"Customer {i}", "2026-01-01T10:00:00Z", f"c{i}@x.io", "csm@x.io", "a;b", "pro"]
        for i in range(n)
    ]


def _count(db_session: Session, model: type) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def _updated_at(db_session: Session) -> dict[str, Any]:
    return dict(db_session.execute(select(Customer.external_id, Customer.updated_at)).all())


def test_reimport_changes_nothing_then_one_cell_updates_one_row(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, _rows(5))
    first = run("customers", path)
    assert (first.inserted, first.updated, first.unchanged) == (5, 0, 0)
    stamps = _updated_at(db_session)

    again = run("customers", path)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 5, 0)
    assert _updated_at(db_session) == stamps
    assert not any("staff" in n for n in again.notes)

    rows = _rows(5)
    rows[2][1] = "Renamed"
    changed = run("customers", write_csv(tmp_path / "c2.csv", HEADER, rows))
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 4)
    after = _updated_at(db_session)
    assert after["c2"] > stamps["c2"]
    assert {k: v for k, v in after.items() if k != "c2"} == {
        k: v for k, v in stamps.items() if k != "c2"
    }
    assert db_session.scalar(select(Customer.name).where(Customer.external_id == "c2")) == (
        "Renamed"
    )
    runs = db_session.execute(select(ImportRun.inserted, ImportRun.updated, ImportRun.unchanged))
    assert sorted(runs.all()) == [(0, 0, 5), (0, 1, 4), (5, 0, 0)]


def test_reimport_of_invoices_is_idempotent(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, Any]
) -> None:
    header = ["external_id", "customer_id", "amount", "currency", "issued_at", "due_at"]
    rows = [
        ["in1", "cus_a", "10.00", "EUR", "2026-01-01", "2026-01-31T23:59:59.5+01:00"],
        ["in2", "cus_b", "0.5", "USD", "2026-01-01", None],
    ]
    path = write_csv(tmp_path / "i.csv", header, rows)
    assert run("invoices", path).inserted == 2
    again = run("invoices", path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    # the same file read in another zone moves the offset-less timestamps: updates
    berlin = run("invoices", path, timezone="Europe/Berlin")
    assert (berlin.updated, berlin.unchanged) == (2, 0)
    rows[1][2] = "0.75"
    changed = run(
        "invoices", write_csv(tmp_path / "i2.csv", header, rows), timezone="Europe/Berlin"
    )
    assert (changed.updated, changed.unchanged) == (1, 1)
    amount = select(Invoice.amount_minor).where(Invoice.external_id == "in2")
    assert db_session.scalar(amount) == 75


def test_failure_midway_leaves_the_store_as_it_was(
    isolated_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real caller: one committed import, then one that fails in its 2nd chunk and is
    rolled back by ``session_scope``; every table is as it was."""
    engine = make_engine(isolated_database_url)
    migrate.upgrade(engine)

    def import_(path: Path) -> None:
        with session_scope(engine) as session:
            import_file(db_session=session, kind="customers", path=path, rejects_dir=tmp_path / "r")

    def state() -> dict[str, Any]:
        with session_scope(engine) as session:
            counts = {m.__name__: _count(session, m) for m in (Customer, Tag, StaffUser, ImportRun)}
            names = session.execute(select(Customer.external_id, Customer.name)).all()
            return {"counts": counts, "names": sorted(names)}

    try:
        import_(write_csv(tmp_path / "before.csv", HEADER, _rows(3)))
        before = state()
        assert before["counts"]["Customer"] == 3

        monkeypatch.setattr(upsert, "WRITE_CHUNK", 10)
        calls = {"n": 0}
        real = upsert.write_chunk

        def failing_write(*args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("connection lost (simulated)")
            real(*args, **kwargs)

        monkeypatch.setattr(upsert, "write_chunk", failing_write)
        rows = _rows(50)
        for row in rows:
            row[1] += " v2"
            row[4] = "other@x.io"
            row[5] = "c;d"
        with pytest.raises(RuntimeError, match="simulated"):
            import_(write_csv(tmp_path / "after.csv", HEADER, rows))

        assert calls["n"] == 2  # chunk 1 of 5 was written, then the failure
        assert state() == before
    finally:
        engine.dispose()


def test_strict_mode_raises_and_writes_nothing(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    rows = _rows(3)
    rows[1][2] = "not a date"
    path = write_csv(tmp_path / "c.csv", HEADER, rows)
    with pytest.raises(InvalidInput) as caught:
        run("customers", path, strict=True)

    assert "1 of 3 row(s) rejected, nothing imported (strict)" in caught.value.message
    assert "row 2, field 'signup_at'" in caught.value.message
    assert "rejects.csv" in (caught.value.hint or "")
    for model in (Customer, Tag, StaffUser, ImportRun):
        assert _count(db_session, model) == 0

    assert run("customers", write_csv(tmp_path / "ok.csv", HEADER, _rows(3)), strict=True).inserted


def test_small_slices_and_chunks_give_the_same_result(
    db_session: Session, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SLICE", 2)
    monkeypatch.setattr(upsert, "WRITE_CHUNK", 3)
    rows = _rows(7)
    rows[3][4] = "boss@x.io"
    rows[5][5] = "solo"
    path = write_csv(tmp_path / "c.csv", HEADER, rows)
    first = run("customers", path)
    assert (first.inserted, first.rejected) == (7, 0)
    assert any("created 2 staff user(s)" in n for n in first.notes)
    stored = {c.external_id: c for c in db_session.scalars(select(Customer))}
    assert sorted(t.name for t in stored["c5"].tags) == ["solo"]
    assert sorted(t.name for t in stored["c6"].tags) == ["a", "b"]
    assert stored["c3"].owner.email == "boss@x.io"
    assert {c.attributes["plan"] for c in stored.values()} == {"pro"}

    assert run("customers", path).unchanged == 7
    rows[6][5] = "a"
    changed = run("customers", write_csv(tmp_path / "c2.csv", HEADER, rows))
    assert (changed.updated, changed.unchanged) == (1, 6)
