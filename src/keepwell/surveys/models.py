"""Survey responses: NPS (0-10), CSAT (1-5) and open-ended answers."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, TimeStampMixin


class SurveyKind(enum.StrEnum):
    """Which question was answered: NPS scores 0-10, CSAT 1-5, open has no score."""

    nps = "nps"
    csat = "csat"
    open = "open"


SCORE_RANGE = {SurveyKind.nps: (0, 10), SurveyKind.csat: (1, 5)}


class SurveyResponse(TimeStampMixin, Base):
    """One answer from a customer (optionally a named contact's e-mail)."""

    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[SurveyKind] = mapped_column(
        Enum(SurveyKind, native_enum=False, length=16, validate_strings=True)
    )
    survey: Mapped[str | None] = mapped_column(String(120))
    respondent_email: Mapped[str | None] = mapped_column(String(320))
    score: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(
            "(kind = 'open') OR (kind = 'nps' AND score IS NOT NULL AND score BETWEEN 0 AND 10)"
            " OR (kind = 'csat' AND score IS NOT NULL AND score BETWEEN 1 AND 5)",
            name="score_in_range",
        ),
        Index("ix_survey_responses_updated_at", "updated_at"),  # the metrics' data version
    )
