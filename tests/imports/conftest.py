"""Fixtures for import tests: run an import in the test's session, seed customers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from keepwell.imports.service import import_file
from keepwell.imports.summary import ImportSummary
from tests.factories import make_customer

Run = Callable[..., ImportSummary]


@pytest.fixture
def rejects_dir(tmp_path: Path) -> Path:
    return tmp_path / "rejects"


@pytest.fixture
def run(db_session: Session, rejects_dir: Path) -> Run:
    """``run(kind, path, **options)``: import into the test's (rolled back) session."""

    def run(kind: str, path: Path, **options: Any) -> ImportSummary:
        summary = import_file(
            db_session=db_session, kind=kind, path=path, rejects_dir=rejects_dir, **options
        )
        summary.check()
        return summary

    return run


@pytest.fixture
def customers(db_session: Session) -> dict[str, Any]:
    """Two stored customers, ``cus_a`` and ``cus_b``, by external id."""
    return {
        ext: make_customer(db_session, external_id=ext, name=f"Customer {ext}")
        for ext in ("cus_a", "cus_b")
    }
