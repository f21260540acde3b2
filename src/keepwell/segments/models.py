"""Saved segments, their current members, the entered/left history and per-customer usage stats."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, TimeStampMixin, utcnow


class SegmentKind(enum.StrEnum):
    """Dynamic segments follow their filter; static segments are hand-picked lists."""

    dynamic = "dynamic"
    static = "static"


class Segment(TimeStampMixin, Base):
    """A named group of customers: a filter (dynamic) or a hand-picked list (static)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    filter_text: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[SegmentKind] = mapped_column(
        Enum(SegmentKind, native_enum=False, length=16, validate_strings=True),
        default=SegmentKind.dynamic,
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    refreshed_at: Mapped[datetime | None]
    member_count: Mapped[int] = mapped_column(Integer, default=0)


class SegmentMembership(Base):
    """A customer who is in a segment (as of the segment's last refresh, or hand-picked)."""

    __tablename__ = "segment_memberships"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_segment_memberships_customer_id", "customer_id"),)


class SegmentMembershipChange(Base):
    """History: a customer ``entered`` or ``left`` a segment at ``at``."""

    __tablename__ = "segment_membership_changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    change: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_segment_membership_changes_segment_at", "segment_id", "at"),
        Index("ix_segment_membership_changes_customer_id", "customer_id"),
    )


class CustomerStats(Base):
    """Behavioural facts per customer from the event store, as of ``as_of`` (see ``stats``).

    ``usage_band``: daily / weekly / monthly / less than monthly (null: no event ever);
    ``active_days_28d`` / ``events_28d``: active local days and events in the 28 days before
    ``as_of``; ``last_event_at`` / ``days_since_last_event``: the latest event and whole days
    from it to ``as_of`` (null: no event ever).
    """

    __tablename__ = "customer_stats"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    as_of: Mapped[datetime]
    usage_band: Mapped[str | None] = mapped_column(String(24), index=True)
    active_days_28d: Mapped[int] = mapped_column(Integer, default=0)
    events_28d: Mapped[int] = mapped_column(Integer, default=0)
    days_since_last_event: Mapped[int | None] = mapped_column(Integer)
    last_event_at: Mapped[datetime | None]
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)
