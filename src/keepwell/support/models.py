"""Support tickets: volume and urgency feed the risk and health scores."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, TimeStampMixin


class TicketPriority(enum.StrEnum):
    """How urgent a ticket is."""

    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class TicketStatus(enum.StrEnum):
    """Where a ticket stands."""

    open = "open"
    pending = "pending"
    closed = "closed"


class Ticket(TimeStampMixin, Base):
    """A support ticket raised by a customer."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_updated_at", "updated_at"),)  # the metrics' data version

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str | None] = mapped_column(String(500))
    priority: Mapped[TicketPriority] = mapped_column(
        Enum(TicketPriority, native_enum=False, length=16, validate_strings=True),
        default=TicketPriority.normal,
    )
    status: Mapped[TicketStatus] = mapped_column(
        Enum(TicketStatus, native_enum=False, length=16, validate_strings=True),
        default=TicketStatus.open,
    )
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
