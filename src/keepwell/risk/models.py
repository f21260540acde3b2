"""Stored churn-risk scores: one row per customer per scoring run (the score history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, utcnow


class RiskScore(Base):
    """A customer's churn probability from one scoring run, with its reasons.

    ``reasons`` is a list of ``{"feature", "text", "contribution"}`` objects, strongest first;
    ``value_minor`` is the value at stake (e.g. annualised MRR or CLV) and ``revenue_at_risk_minor``
    = probability x value, which ranks the CSM work list.
    """

    __tablename__ = "risk_scores"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    scored_at: Mapped[datetime] = mapped_column(default=utcnow)
    as_of: Mapped[datetime]
    model_version: Mapped[str] = mapped_column(String(64))
    probability: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    value_minor: Mapped[int | None] = mapped_column(BigInteger)
    revenue_at_risk_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))

    __table_args__ = (
        Index("ix_risk_scores_customer_time", "customer_id", "scored_at"),
        Index("ix_risk_scores_as_of", "as_of"),
    )
