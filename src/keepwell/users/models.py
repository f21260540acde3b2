"""Staff users: the people who work in keepwell (admins, managers, CSMs, viewers)."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from keepwell.models import Base, Id, TimeStampMixin


class Role(enum.StrEnum):
    """What a staff user may do: admins manage users and settings, viewers only read."""

    admin = "admin"
    manager = "manager"
    csm = "csm"
    viewer = "viewer"


class StaffUser(TimeStampMixin, Base):
    """A member of staff; customers name one as their owner (responsible manager)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str]
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, validate_strings=True), default=Role.csm
    )
    password_hash: Mapped[str | None] = mapped_column(String(512))
    is_active: Mapped[bool] = mapped_column(default=True)
