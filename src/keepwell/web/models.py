"""Tables of the web layer: webhook deliveries already processed (for idempotency)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, utcnow


class WebhookEvent(Base):
    """A webhook event (e.g. Stripe's ``evt_...``) that was applied; a repeat is skipped."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(120))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_webhook_events_source_event"),
    )
