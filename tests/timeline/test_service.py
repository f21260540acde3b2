"""The timeline merges imported facts and recorded entries, newest first."""

from __future__ import annotations

from sqlalchemy.orm import Session

from keepwell.billing.models import InvoiceStatus
from keepwell.customers.models import Note
from keepwell.support.models import Ticket, TicketPriority
from keepwell.surveys.models import SurveyKind, SurveyResponse
from keepwell.timeline import service
from tests.factories import at, make_customer, make_invoice, make_subscription


def test_timeline_merges_sources_newest_first(db_session: Session) -> None:
    c = make_customer(db_session)
    make_subscription(
        db_session,
        c,
        plan="pro",
        mrr_minor=9900,
        started_at=at(2026, 1, 1),
        ended_at=at(2026, 4, 1),
        cancel_reason="too expensive",
    )
    make_invoice(
        db_session,
        c,
        external_id="in_9",
        issued_at=at(2026, 2, 1),
        due_at=at(2026, 2, 15),
        status=InvoiceStatus.failed,
        failure_reason="card declined",
    )
    db_session.add_all(
        [
            SurveyResponse(
                external_id="r1",
                customer_id=c.id,
                kind=SurveyKind.nps,
                score=3,
                comment="slow",
                responded_at=at(2026, 3, 1),
            ),
            Ticket(
                external_id="t1",
                customer_id=c.id,
                subject="Export broken",
                priority=TicketPriority.urgent,
                opened_at=at(2026, 3, 5),
            ),
            Note(customer_id=c.id, body="Called, unhappy about price", created_at=at(2026, 3, 20)),
        ]
    )
    db_session.flush()
    service.record(
        db_session=db_session,
        customer_id=c.id,
        kind="alert",
        title="Usage fell 60%",
        occurred_at=at(2026, 3, 10),
        detail={"drop": 0.6},
    )
    items = service.for_customer(db_session=db_session, customer_id=c.id)
    assert [(i.occurred_at, i.kind, i.title) for i in items] == [
        (at(2026, 4, 1), "subscription", "Ended pro (too expensive)"),
        (at(2026, 3, 20), "note", "Called, unhappy about price"),
        (at(2026, 3, 10), "alert", "Usage fell 60%"),
        (at(2026, 3, 5), "ticket", "Ticket (urgent): Export broken"),
        (at(2026, 3, 1), "survey", "NPS 3: “slow”"),
        (at(2026, 2, 15), "payment", "Payment failed: card declined"),
        (at(2026, 2, 1), "invoice", "Invoice in_9: $49.00"),
        (at(2026, 1, 1), "subscription", "Started pro at $99.00/mo"),
    ]
    assert items[2].detail == {"drop": 0.6}
    assert len(service.for_customer(db_session=db_session, customer_id=c.id, limit=3)) == 3
