"""Alert rules, playbooks and firings (the audit log of what automation did)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keepwell.customers.models import Customer
from keepwell.models import Base, Id, TimeStampMixin, utcnow


class Playbook(TimeStampMixin, Base):
    """A named list of actions (e.g. "Payment failed playbook") that rules can reference."""

    __tablename__ = "playbooks"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(default=list)


class AlertRule(TimeStampMixin, Base):
    """A trigger on customer state or events, an optional audience filter and actions.

    ``params`` holds the trigger's parameters and ``actions`` the action list, both validated
    per kind by :mod:`keepwell.automation.definitions` before they are saved.
    """

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    trigger: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    audience: Mapped[str | None] = mapped_column(Text)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    cooldown_days: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )


class AlertFiring(Base):
    """One occurrence of a rule for one customer, with each action's result.

    ``dedup_key`` identifies the occurrence (customer + invoice id, crossing date, ...); it is
    unique per rule, so a rule never fires twice for the same occurrence. ``results`` has one
    ``{"action", "status", "attempts", "result", "error"}`` object per action; ``status`` is
    ``done`` when every action succeeded, ``failed`` while some wait for a retry, ``gave_up``
    after the last attempt.
    """

    __tablename__ = "alert_firings"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    dedup_key: Mapped[str] = mapped_column(String(255))
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="done")
    attempts: Mapped[int] = mapped_column(default=1)
    results: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    last_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(viewonly=True)

    __table_args__ = (
        UniqueConstraint("rule_id", "dedup_key", name="uq_alert_firings_rule_dedup"),
        Index("ix_alert_firings_rule_customer", "rule_id", "customer_id", "fired_at"),
        Index("ix_alert_firings_status", "status"),
    )
