"""Staff users: the people who work in keepwell (admins, managers, CSMs, viewers)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keepwell.models import Base, Id, JSONType, TimeStampMixin, utcnow


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
    last_login_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token for the REST API. Only a SHA-256 hash of the secret is stored.

    ``scopes`` is a subset of ``read``, ``write``, ``admin``; a request may do what both the
    token's scopes and its creator's current role allow.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    created_by: Mapped[StaffUser] = relationship(lazy="joined")

    @property
    def revoked(self) -> bool:
        """Whether the token was revoked (revoked tokens are kept for the record)."""
        return self.revoked_at is not None


class LoginAttempt(Base):
    """One web login attempt, kept for rate limiting (per account and per IP address)."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        Index("ix_login_attempts_email_time", "email", "attempted_at"),
        Index("ix_login_attempts_ip_time", "ip", "attempted_at"),
    )
