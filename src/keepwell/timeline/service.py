"""Timeline service: everything that happened to one customer, newest first, in one stream.

Imported facts are read from their own tables (subscriptions, invoices, orders, surveys,
tickets, notes); what features do is appended with :func:`record`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.billing.models import Invoice, InvoiceStatus, Order, Subscription
from keepwell.customers.models import Note
from keepwell.money import format_money
from keepwell.support.models import Ticket
from keepwell.surveys.models import SurveyResponse
from keepwell.timeline.models import TimelineEntry


@dataclass(frozen=True)
class TimelineItem:
    """One line of a customer's timeline."""

    occurred_at: datetime
    kind: str
    title: str
    detail: dict[str, Any] = field(default_factory=dict)


def record(
    *,
    db_session: Session,
    customer_id: int,
    kind: str,
    title: str,
    detail: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    actor_id: int | None = None,
) -> TimelineEntry:
    """Append an entry to a customer's timeline (flushes; the caller commits)."""
    entry = TimelineEntry(
        customer_id=customer_id, kind=kind, title=title, detail=detail or {}, actor_id=actor_id
    )
    if occurred_at is not None:
        entry.occurred_at = occurred_at
    db_session.add(entry)
    db_session.flush()
    return entry


def _subscription_items(sub: Subscription) -> list[TimelineItem]:
    price = f"{format_money(sub.mrr_minor, sub.currency)}/mo"
    items = [TimelineItem(sub.started_at, "subscription", f"Started {sub.plan} at {price}")]
    if sub.ended_at is not None:
        why = f" ({sub.cancel_reason})" if sub.cancel_reason else ""
        items.append(TimelineItem(sub.ended_at, "subscription", f"Ended {sub.plan}{why}"))
    return items


def _invoice_items(inv: Invoice) -> list[TimelineItem]:
    amount = format_money(inv.amount_minor, inv.currency)
    title = f"Invoice {inv.external_id}: {amount}"
    late = (
        inv.paid_at is not None
        and inv.due_at is not None
        and (inv.paid_at - inv.due_at).total_seconds() >= 86400
    )
    if inv.paid_at is not None and not late:
        return [TimelineItem(inv.issued_at, "invoice", f"{title}, paid {inv.paid_at:%Y-%m-%d}")]
    items = [TimelineItem(inv.issued_at, "invoice", title)]
    if late:
        days = (inv.paid_at - inv.due_at).days
        items.append(TimelineItem(inv.paid_at, "payment", f"Paid {amount}, {days} days late"))
    if inv.status in (InvoiceStatus.failed, InvoiceStatus.overdue):
        reason = f": {inv.failure_reason}" if inv.failure_reason else ""
        when = inv.due_at or inv.issued_at
        items.append(TimelineItem(when, "payment", f"Payment {inv.status.value}{reason}"))
    return items


def for_customer(*, db_session: Session, customer_id: int, limit: int = 50) -> list[TimelineItem]:
    """The customer's ``limit`` most recent timeline items, newest first."""
    items: list[TimelineItem] = []

    def newest(model, column):
        return db_session.scalars(
            select(model)
            .where(model.customer_id == customer_id)
            .order_by(column.desc())
            .limit(limit)
        )

    for sub in newest(Subscription, Subscription.started_at):
        items += _subscription_items(sub)
    for inv in newest(Invoice, Invoice.issued_at):
        items += _invoice_items(inv)
    for order in newest(Order, Order.ordered_at):
        amount = format_money(order.amount_minor, order.currency)
        items.append(
            TimelineItem(order.ordered_at, "order", f"Order {order.external_id}: {amount}")
        )
    for resp in newest(SurveyResponse, SurveyResponse.responded_at):
        score = f" {resp.score}" if resp.score is not None else ""
        comment = f": “{resp.comment}”" if resp.comment else ""
        items.append(
            TimelineItem(resp.responded_at, "survey", f"{resp.kind.value.upper()}{score}{comment}")
        )
    for ticket in newest(Ticket, Ticket.opened_at):
        subject = ticket.subject or ticket.external_id
        items.append(
            TimelineItem(ticket.opened_at, "ticket", f"Ticket ({ticket.priority.value}): {subject}")
        )
        if ticket.closed_at is not None:
            items.append(TimelineItem(ticket.closed_at, "ticket", f"Ticket closed: {subject}"))
    for note in newest(Note, Note.created_at):
        items.append(TimelineItem(note.created_at, "note", note.body))
    for entry in newest(TimelineEntry, TimelineEntry.occurred_at):
        items.append(TimelineItem(entry.occurred_at, entry.kind, entry.title, entry.detail))
    items.sort(key=lambda item: item.occurred_at, reverse=True)
    return items[:limit]
