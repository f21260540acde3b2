"""Customers import: stored values, owners, tags, custom attributes, update semantics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer, CustomerStatus, Tag
from keepwell.imports.models import ImportRun
from keepwell.users.models import Role, StaffUser
from tests.imports.conftest import Run
from tests.imports.files import write_csv, write_parquet

HEADER = [
    "external_id",
    "name",
    "email",
    "company",
    "industry",
    "country",
    "time_zone",
    "signup_at",
    "owner_email",
    "status",
    "tags",
    "attr_seats",
    "attr_segment",
]
ROWS = [
    [
        "c1",
        "Acme 🚀",
        "ops@acme.test",
        "Acme GmbH",
        "travel",
        "de",
        "europe/berlin",
        "2026-03-01T09:30:00+02:00",
        "Ana@Example.com",
        "Trial",
        "vip; eu ;vip",
        "12",
        "smb",
    ],
    ["c2", "Beta", None, None, None, None, None, "2026-03-01", None, None, None, None, None],
    ["c3", "Gamma", None, None, None, "US", None, "2026-03-02 10:00", "ana@example.com"]
    + [None] * 4,
]


def _customer(db_session: Session, external_id: str) -> Customer:
    return db_session.scalars(select(Customer).where(Customer.external_id == external_id)).one()


def test_customers_csv_stores_every_field(db_session: Session, run: Run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "customers.csv", HEADER, ROWS)
    summary = run("customers", path, timezone="Europe/Berlin")

    assert (summary.rows, summary.inserted, summary.rejected) == (3, 3, 0)
    acme = _customer(db_session, "c1")
    assert acme.name == "Acme 🚀"
    assert acme.email == "ops@acme.test"
    assert acme.company == "Acme GmbH"
    assert acme.industry == "travel"
    assert acme.country == "DE"
    assert acme.time_zone == "Europe/Berlin"
    assert acme.signup_at == datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
    assert acme.status is CustomerStatus.trial
    assert sorted(t.name for t in acme.tags) == ["eu", "vip"]
    assert acme.attributes == {"seats": "12", "segment": "smb"}
    assert acme.owner is not None
    assert acme.owner.email == "Ana@Example.com"
    assert acme.owner.role is Role.csm
    assert acme.owner.password_hash is None

    beta = _customer(db_session, "c2")
    # a bare date is midnight in the import's zone (Berlin, UTC+1 in March)
    assert beta.signup_at == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert (beta.email, beta.country, beta.owner_id) == (None, None, None)
    assert beta.time_zone == "UTC"  # the schema default
    assert beta.status is CustomerStatus.active
    assert beta.tags == []
    assert beta.attributes == {}

    gamma = _customer(db_session, "c3")
    assert gamma.owner_id == acme.owner_id  # owner e-mails match case-insensitively
    assert db_session.scalar(select(func.count()).select_from(StaffUser)) == 1
    assert any("created 1 staff user" in n for n in summary.notes)
    run_row = db_session.scalars(select(ImportRun)).one()
    assert (run_row.kind, run_row.inserted, run_row.rejected) == ("customers", 3, 0)
    assert run_row.finished_at is not None
    assert len(run_row.sha256) == 64


def test_customers_parquet_with_typed_columns(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    signup = pa.array(
        [datetime(2026, 3, 1, 9, 30, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)],
        pa.timestamp("us", tz="UTC"),
    )
    path = write_parquet(
        tmp_path / "customers.parquet",
        {
            "external_id": ["p1", "p2"],
            "name": ["Parq", "Uet"],
            "signup_at": signup,
            "country": pa.array(["FR", None]).dictionary_encode(),
            "attr_seats": pa.array([5, None], pa.int64()),
            "tags": ["a;b", None],
        },
    )
    summary = run("customers", path)

    assert (summary.inserted, summary.rejected) == (2, 0)
    p1 = _customer(db_session, "p1")
    assert p1.signup_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert p1.country == "FR"
    assert p1.attributes == {"seats": "5"}
    assert sorted(t.name for t in p1.tags) == ["a", "b"]
    assert _customer(db_session, "p2").attributes == {}


def test_existing_staff_user_is_reused(db_session: Session, run: Run, tmp_path: Path) -> None:
    staff = StaffUser(email="Bo@Example.com", name="Bo", role=Role.manager)
    db_session.add(staff)
    db_session.flush()
    path = write_csv(
        tmp_path / "c.csv",
        ["external_id", "name", "signup_at", "owner_email"],
        [["c1", "One", "2026-01-01", "bo@example.com"]],
    )
    summary = run("customers", path)

    assert _customer(db_session, "c1").owner_id == staff.id
    assert not any("staff" in n for n in summary.notes)
    assert db_session.scalar(select(func.count()).select_from(StaffUser)) == 1


def test_update_writes_only_the_columns_the_file_has(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    run("customers", write_csv(tmp_path / "full.csv", HEADER, ROWS))
    tag_count = db_session.scalar(select(func.count()).select_from(Tag))
    partial = write_csv(
        tmp_path / "partial.csv",
        ["external_id", "name", "signup_at", "tags", "attr_seats", "attr_plan"],
        [
            ["c1", "Acme AG", "2026-03-01T09:30:00+02:00", "vip", None, "pro"],
            ["c2", "Beta", "2026-03-01", None, None, None],
        ],
    )
    summary = run("customers", partial)

    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 1)
    acme = _customer(db_session, "c1")
    assert acme.name == "Acme AG"
    assert acme.industry == "travel"  # absent column: left as it was
    assert acme.status is CustomerStatus.trial  # absent column: no default applied
    assert acme.owner is not None  # absent owner_email column: owner kept
    assert [t.name for t in acme.tags] == ["vip"]  # the tags column replaces the set
    # attributes merge: an empty cell removes the key, others are kept or added
    assert acme.attributes == {"segment": "smb", "plan": "pro"}
    assert db_session.scalar(select(func.count()).select_from(Tag)) == tag_count


def test_tag_change_alone_counts_as_an_update(
    db_session: Session, run: Run, tmp_path: Path
) -> None:
    header = ["external_id", "name", "signup_at", "tags"]
    run("customers", write_csv(tmp_path / "a.csv", header, [["c1", "A", "2026-01-01", "x;y"]]))
    summary = run(
        "customers", write_csv(tmp_path / "b.csv", header, [["c1", "A", "2026-01-01", "y;z"]])
    )

    assert (summary.updated, summary.unchanged) == (1, 0)
    assert sorted(t.name for t in _customer(db_session, "c1").tags) == ["y", "z"]
