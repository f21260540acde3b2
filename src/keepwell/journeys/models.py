"""Journeys: multi-step sequences, their steps, enrolments and each step's run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keepwell.models import Base, Id, TimeStampMixin, utcnow


class Journey(TimeStampMixin, Base):
    """A named sequence of steps with a trigger and exit conditions.

    ``trigger`` is ``manual`` (rules or staff enrol), ``event`` (an event name in the event
    store) or ``segment`` (entering a segment); ``trigger_value`` holds the event or segment
    name. ``exit_conditions`` is a list of ``{"kind": ...}`` objects; ``checked_until`` is when
    the event or segment trigger last looked.
    """

    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    trigger_value: Mapped[str | None] = mapped_column(String(255))
    exit_conditions: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    checked_until: Mapped[datetime | None]

    steps: Mapped[list[JourneyStep]] = relationship(
        back_populates="journey",
        cascade="all, delete-orphan",
        order_by="JourneyStep.position",
        lazy="selectin",
    )


class JourneyStep(Base):
    """One step of a journey: ``kind`` (wait, send_email, create_task, add_tag, webhook) and
    its parameters."""

    __tablename__ = "journey_steps"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)

    journey: Mapped[Journey] = relationship(back_populates="steps")

    __table_args__ = (
        UniqueConstraint("journey_id", "position", name="uq_journey_steps_journey_position"),
    )


class JourneyEnrollment(Base):
    """A customer's way through a journey (one per customer and journey).

    ``position`` is the next step to run; it runs once ``due_at`` has passed. ``status`` is
    ``active``, ``completed`` or ``exited`` (``exit_reason`` says why).
    """

    __tablename__ = "journey_enrollments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(500))
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="active")
    position: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        UniqueConstraint(
            "journey_id", "customer_id", name="uq_journey_enrollments_journey_customer"
        ),
        Index("ix_journey_enrollments_status_due", "status", "due_at"),
    )


class JourneyStepRun(Base):
    """The outcome of one step for one enrolment: ``done``, ``skipped`` or ``failed``."""

    __tablename__ = "journey_step_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("journey_enrollments.id", ondelete="CASCADE")
    )
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=1)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "enrollment_id", "position", name="uq_journey_step_runs_enrollment_position"
        ),
    )
