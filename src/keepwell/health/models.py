"""Stored health scores: one row per customer per scoring run (the health history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, utcnow


class HealthScore(Base):
    """A customer's 0-100 health score with its band and per-component scores.

    ``components`` maps component name (usage, engagement, payments, ...) to its 0-100 score;
    ``config`` names the health configuration that produced it.
    """

    __tablename__ = "health_scores"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    scored_at: Mapped[datetime] = mapped_column(default=utcnow)
    as_of: Mapped[datetime]
    score: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(16))
    components: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config: Mapped[str] = mapped_column(String(64), default="default")

    __table_args__ = (
        Index("ix_health_scores_customer_time", "customer_id", "scored_at"),
        Index("ix_health_scores_as_of", "as_of"),
    )
