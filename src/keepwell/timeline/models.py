"""The activity timeline: one stream of what happened to a customer.

Imported facts (subscriptions, invoices, surveys, tickets, notes) are read from their own
tables; everything else later features do (emails sent, alerts fired, offers made, tags
changed) is appended here as a :class:`TimelineEntry`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, utcnow


class TimelineEntry(Base):
    """Something that happened to a customer, appended by a feature."""

    __tablename__ = "timeline_entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_timeline_entries_customer_time", "customer_id", "occurred_at"),)
