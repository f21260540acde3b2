"""The outbox (one row per recipient message), suppressed addresses and tracking events."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, TimeStampMixin, utcnow


class MessageKind(enum.StrEnum):
    """Why a message is sent. Every kind except ``transactional`` gets List-Unsubscribe."""

    campaign = "campaign"
    journey = "journey"
    alert = "alert"
    transactional = "transactional"


class MessageState(enum.StrEnum):
    """Life of an outbox row: ``queued -> sending -> sent | failed | bounced | ...``."""

    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    bounced = "bounced"
    suppressed = "suppressed"
    cancelled = "cancelled"


class SuppressionReason(enum.StrEnum):
    """Why an address gets no more e-mail."""

    unsubscribed = "unsubscribed"
    hard_bounce = "hard_bounce"
    complaint = "complaint"
    manual = "manual"


class EventKind(enum.StrEnum):
    """What a recipient (or their mail server) did with a message."""

    delivered = "delivered"
    opened = "opened"
    clicked = "clicked"
    unsubscribed = "unsubscribed"
    bounced = "bounced"


class EmailMessage(TimeStampMixin, Base):
    """One message to one recipient, from queueing to its final state.

    ``dedup_key`` makes queueing idempotent (a second message with the same key is not
    queued). ``message_id`` is the RFC 5322 Message-ID, fixed before the first SMTP attempt so
    a retry carries the same one. ``claimed_by`` names the sender run that set ``sending``.
    ``campaign_id`` and ``variant`` are plain columns the campaigns engine fills in.
    """

    __tablename__ = "email_messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    kind: Mapped[str] = mapped_column(String(16))
    campaign_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    variant: Mapped[str | None] = mapped_column(String(32))
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    not_before: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default=MessageState.queued.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    smtp_response: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_email_messages_state_due", "state", "not_before"),)


class EmailSuppression(Base):
    """An address keepwell never sends to (stored lower-case)."""

    __tablename__ = "email_suppressions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class EmailEvent(Base):
    """A tracking event on a message: opened, clicked (with ``url``), unsubscribed, bounced."""

    __tablename__ = "email_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(Id, ForeignKey("email_messages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_email_events_message_kind", "message_id", "kind"),
        Index("ix_email_events_kind_at", "kind", "at"),
    )
