"""Surveys and tickets: score ranges, choices, time order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.support.models import Ticket, TicketPriority, TicketStatus
from keepwell.surveys.models import SurveyKind, SurveyResponse
from tests.imports.conftest import Run
from tests.imports.files import write_csv, write_parquet

SURVEY_HEADER = ["external_id", "customer_id", "kind", "score", "comment", "responded_at"]
SURVEY_HEADER += ["survey", "respondent_email"]


def test_surveys_store_answers_and_check_scores(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, Any]
) -> None:
    rows = [
        ["r1", "cus_a", "nps", "9", 'Great, "really"\nthanks', "2026-02-01", "Q1", "a@x.io"],
        ["r2", "cus_a", "CSAT", "1", None, "2026-02-01", None, None],
        ["r3", "cus_b", "open", None, "Please add SSO", "2026-02-01", None, None],
        ["r4", "cus_b", "nps", "11", None, "2026-02-01", None, None],
        ["r5", "cus_b", "csat", "0", None, "2026-02-01", None, None],
        ["r6", "cus_b", "nps", None, None, "2026-02-01", None, None],
        ["r7", "cus_b", "stars", "3", None, "2026-02-01", None, "not-an-email"],
    ]
    summary = run("surveys", write_csv(tmp_path / "s.csv", SURVEY_HEADER, rows))

    assert (summary.inserted, summary.rejected) == (3, 4)
    answers = {r.external_id: r for r in db_session.scalars(select(SurveyResponse))}
    r1 = answers["r1"]
    assert (r1.kind, r1.score, r1.survey, r1.respondent_email) == (
        SurveyKind.nps,
        9,
        "Q1",
        "a@x.io",
    )
    assert r1.comment == 'Great, "really"\nthanks'
    assert r1.customer_id == customers["cus_a"].id
    assert answers["r2"].kind is SurveyKind.csat
    assert (answers["r3"].kind, answers["r3"].score) == (SurveyKind.open, None)

    problems = {(r.row, r.field, r.reason) for r in summary.rejects}
    assert (4, "score", "nps score must be between 0 and 10") in problems
    assert (5, "score", "csat score must be between 1 and 5") in problems
    assert (6, "score", "score is required for nps answers (0-10)") in problems
    assert (7, "kind", "expected one of: nps, csat, open") in problems
    assert (
        7,
        "respondent_email",
        "invalid e-mail address, expected e.g. ana@example.com",
    ) in problems


def test_tickets_parquet_and_time_order(
    db_session: Session, run: Run, tmp_path: Path, customers: dict[str, Any]
) -> None:
    path = write_parquet(
        tmp_path / "t.parquet",
        {
            "external_id": ["t1", "t2", "t3"],
            "customer_id": ["cus_a", "cus_a", "cus_b"],
            "subject": ["Cannot log in", "x" * 501, None],
            "priority": ["urgent", None, "high"],
            "status": ["closed", None, "closed"],
            "opened_at": pa.array(
                [datetime(2026, 1, 1, 9, tzinfo=UTC)] * 3, pa.timestamp("ms", tz="UTC")
            ),
            "closed_at": pa.array(
                [datetime(2026, 1, 2, tzinfo=UTC), None, datetime(2025, 12, 31, tzinfo=UTC)],
                pa.timestamp("ms", tz="UTC"),
            ),
        },
    )
    summary = run("tickets", path)

    assert (summary.inserted, summary.rejected) == (1, 2)
    ticket = db_session.scalars(select(Ticket)).one()
    assert (ticket.external_id, ticket.subject) == ("t1", "Cannot log in")
    assert (ticket.priority, ticket.status) == (TicketPriority.urgent, TicketStatus.closed)
    assert ticket.opened_at == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert ticket.closed_at == datetime(2026, 1, 2, tzinfo=UTC)
    problems = {(r.row, r.field, r.reason) for r in summary.rejects}
    assert (2, "subject", "too long: 501 characters, at most 500 allowed") in problems
    assert (3, "closed_at", "closed_at is before opened_at") in problems
