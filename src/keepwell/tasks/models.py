"""Tasks (work for staff, linked to a customer) and the rules that assign owners."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, JSONType, TimeStampMixin


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, validate_strings=True)


class TaskPriority(enum.StrEnum):
    """How urgent a task is (``urgent`` sorts first)."""

    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class TaskStatus(enum.StrEnum):
    """Where a task stands; ``open`` and ``in_progress`` are still to do."""

    open = "open"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


class Task(TimeStampMixin, Base):
    """A piece of work for a member of staff about one customer.

    ``source`` is ``manual``, ``rule:<id>`` or ``journey:<id>``. ``dedup_key`` (unique, optional)
    lets automation create a task at most once per occurrence.
    """

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    due_at: Mapped[datetime | None]
    priority: Mapped[TaskPriority] = mapped_column(_enum(TaskPriority), default=TaskPriority.normal)
    status: Mapped[TaskStatus] = mapped_column(_enum(TaskStatus), default=TaskStatus.open)
    source: Mapped[str] = mapped_column(String(64), default="manual")
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    completed_at: Mapped[datetime | None]
    assignment_rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignment_rules.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_tasks_customer_id", "customer_id"),
        Index("ix_tasks_owner_status_due", "owner_id", "status", "due_at"),
        Index("ix_tasks_status_due", "status", "due_at"),
    )


class RuleTarget(enum.StrEnum):
    """What an assignment rule gives an owner to."""

    tasks = "tasks"
    customers = "customers"


class RuleStrategy(enum.StrEnum):
    """How an assignment rule picks the owner.

    ``round_robin`` cycles through ``assignee_ids`` (the position is stored, so it stays fair
    across runs); ``customer_owner`` gives a task to its customer's owner (tasks only).
    """

    round_robin = "round_robin"
    customer_owner = "customer_owner"


class AssignmentRule(TimeStampMixin, Base):
    """Who gets an unowned task or customer: rules are tried by ``position``, first match wins.

    The audience is ``segment_filter`` (filter text) or ``segment_name`` (a saved segment);
    neither means every customer. ``next_index`` is the round-robin position.
    """

    __tablename__ = "assignment_rules"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    position: Mapped[int] = mapped_column(default=0)
    target: Mapped[RuleTarget] = mapped_column(_enum(RuleTarget), default=RuleTarget.tasks)
    segment_filter: Mapped[str | None] = mapped_column(Text)
    segment_name: Mapped[str | None] = mapped_column(String(120))
    strategy: Mapped[RuleStrategy] = mapped_column(
        _enum(RuleStrategy), default=RuleStrategy.round_robin
    )
    assignee_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    next_index: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (Index("ix_assignment_rules_target_position", "target", "position"),)
