"""Customers, their contacts, tags and notes."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Enum, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keepwell.models import Base, Id, TimeStampMixin, UTCDateTime, utcnow
from keepwell.users.models import StaffUser


class CustomerStatus(enum.StrEnum):
    """Commercial state of a customer account."""

    lead = "lead"
    trial = "trial"
    active = "active"
    churned = "churned"


customer_tags = Table(
    "customer_tags",
    Base.metadata,
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Id, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
)


class Customer(TimeStampMixin, Base):
    """A customer account (a company or a person that buys).

    ``external_id`` is the id in the system of record (billing, shop); imports upsert on it.
    ``attributes`` holds custom fields as JSON.
    """

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(index=True)  # the customers list sorts by name
    email: Mapped[str | None] = mapped_column(String(320))
    company: Mapped[str | None]
    industry: Mapped[str | None] = mapped_column(String(120), index=True)
    country: Mapped[str | None] = mapped_column(String(2))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    signup_at: Mapped[datetime]
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[CustomerStatus] = mapped_column(
        Enum(CustomerStatus, native_enum=False, length=16, validate_strings=True),
        default=CustomerStatus.active,
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)

    owner: Mapped[StaffUser | None] = relationship(lazy="joined")
    tags: Mapped[list[Tag]] = relationship(secondary=customer_tags, lazy="selectin")
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_customers_signup_at", "signup_at"),
        Index("ix_customers_updated_at", "updated_at"),  # the metrics' data version
    )


class Contact(TimeStampMixin, Base):
    """A person at a customer account."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str]
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(120))
    is_primary: Mapped[bool] = mapped_column(default=False)

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class Tag(TimeStampMixin, Base):
    """A label customers can carry (many-to-many)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    color: Mapped[str | None] = mapped_column(String(16))


class Note(TimeStampMixin, Base):
    """A free-text note on a customer, written by staff."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
