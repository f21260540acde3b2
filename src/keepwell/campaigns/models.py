"""E-mail templates and campaigns: variants (A/B), recipients with their assignment snapshot."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keepwell.models import Base, Id, TimeStampMixin


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, validate_strings=True)


class EmailTemplate(TimeStampMixin, Base):
    """A named, validated e-mail template: Jinja2 subject, HTML and (optional) plain text.

    ``text`` is None when the plain text is generated from the HTML. ``version`` goes up by one
    on every change.
    """

    __tablename__ = "email_templates"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    subject: Mapped[str] = mapped_column(String(998))
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)


class CampaignStatus(enum.StrEnum):
    """Lifecycle of a campaign: draft -> scheduled -> sending -> sent, or cancelled."""

    draft = "draft"
    scheduled = "scheduled"
    sending = "sending"
    sent = "sent"
    cancelled = "cancelled"


class Campaign(TimeStampMixin, Base):
    """A bulk e-mail to a segment (or filter), split into variants and an optional holdout.

    ``send_date`` + ``send_time`` ("HH:MM") schedule each recipient at that local time in their
    own time zone; both null = as soon as launched. ``seed`` makes the random assignment
    reproducible.
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus), default=CampaignStatus.draft
    )
    segment_id: Mapped[int | None] = mapped_column(Id)
    segment_name: Mapped[str | None] = mapped_column(String(120))
    filter_text: Mapped[str | None] = mapped_column(Text)
    holdout_percent: Mapped[float] = mapped_column(Float, default=0.0)
    seed: Mapped[int]
    send_date: Mapped[date | None]
    send_time: Mapped[str | None] = mapped_column(String(5))
    launched_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    variants: Mapped[list[CampaignVariant]] = relationship(
        back_populates="campaign",
        cascade="all, delete-orphan",
        order_by="CampaignVariant.id",
        lazy="selectin",
    )

    __table_args__ = (
        CheckConstraint(
            "holdout_percent >= 0 AND holdout_percent < 100", name="holdout_percent_range"
        ),
        CheckConstraint("segment_id IS NOT NULL OR filter_text IS NOT NULL", name="has_audience"),
    )


class CampaignVariant(Base):
    """One arm of a campaign: a template and its share (percent) of the non-holdout audience."""

    __tablename__ = "campaign_variants"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    template_id: Mapped[int] = mapped_column(ForeignKey("email_templates.id", ondelete="RESTRICT"))
    percent: Mapped[float] = mapped_column(Float)

    campaign: Mapped[Campaign] = relationship(back_populates="variants")
    template: Mapped[EmailTemplate] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("campaign_id", "name", name="uq_campaign_variants_campaign_name"),
        CheckConstraint("percent > 0 AND percent <= 100", name="percent_range"),
    )


class RecipientStatus(enum.StrEnum):
    """What launch did with one member of the audience snapshot."""

    holdout = "holdout"  # in the random holdout group: gets nothing
    pending = "pending"  # assigned, not yet handed to the outbox
    queued = "queued"  # in the outbox (message_id set)
    suppressed = "suppressed"  # the outbox refused it (suppressed address or duplicate)
    failed = "failed"  # could not be rendered (error says why)
    cancelled = "cancelled"  # the campaign was cancelled before it was queued


class CampaignRecipient(Base):
    """A member of the audience snapshot taken at launch and the group it was assigned to.

    ``variant_id`` is null for the holdout group. ``message_id`` is the outbox message
    (``email_messages.id``) once queued.
    """

    __tablename__ = "campaign_recipients"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_variants.id", ondelete="CASCADE")
    )
    address: Mapped[str] = mapped_column(String(320))
    status: Mapped[RecipientStatus] = mapped_column(_enum(RecipientStatus))
    not_before: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(Id)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_campaign_recipients_customer"),
        Index("ix_campaign_recipients_campaign_status", "campaign_id", "status"),
        Index("ix_campaign_recipients_customer_id", "customer_id"),
    )
