"""The deal pipeline: configurable stages, deals (upsell, renewal, ...) and their stage history.

Money is an integer amount in minor units plus an ISO 4217 currency code. A stage's
``probability_pct`` (0-100) weights the pipeline; its ``outcome`` says whether a deal in it is
still open, won or lost.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keepwell.models import Base, Id, TimeStampMixin, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, validate_strings=True)


class StageOutcome(enum.StrEnum):
    """Whether deals in a stage are still being worked, or closed won / lost."""

    open = "open"
    won = "won"
    lost = "lost"


class DealKind(enum.StrEnum):
    """What a deal is for."""

    upsell = "upsell"
    renewal = "renewal"
    expansion = "expansion"
    new = "new"


class DealStage(TimeStampMixin, Base):
    """A pipeline stage, shown in ``position`` order."""

    __tablename__ = "deal_stages"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    position: Mapped[int] = mapped_column(default=0)
    probability_pct: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[StageOutcome] = mapped_column(_enum(StageOutcome), default=StageOutcome.open)

    __table_args__ = (
        CheckConstraint(
            "probability_pct >= 0 AND probability_pct <= 100", name="probability_range"
        ),
    )


class Deal(TimeStampMixin, Base):
    """An opportunity with a customer: value, owner, expected close and current stage.

    ``closed_at`` is set while the deal sits in a won or lost stage; ``close_reason`` says why.
    ``dedup_key`` (unique, optional) makes automatic creation (renewals) idempotent.
    """

    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    kind: Mapped[DealKind] = mapped_column(_enum(DealKind), default=DealKind.upsell)
    value_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("deal_stages.id", ondelete="RESTRICT"))
    expected_close_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL")
    )
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)

    stage: Mapped[DealStage] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("value_minor >= 0", name="value_non_negative"),
        Index("ix_deals_customer_id", "customer_id"),
        Index("ix_deals_stage_owner", "stage_id", "owner_id"),
    )


class DealStageChange(Base):
    """One move of a deal between stages (``from_stage_id`` is null when it was created)."""

    __tablename__ = "deal_stage_changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    from_stage_id: Mapped[int | None] = mapped_column(
        ForeignKey("deal_stages.id", ondelete="RESTRICT")
    )
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("deal_stages.id", ondelete="RESTRICT"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_deal_stage_changes_deal_time", "deal_id", "changed_at"),)
