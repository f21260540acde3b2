"""Shared ORM base, column types and mixins used by every domain package."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned time-zone aware (UTC).

    Naive datetimes are refused: keepwell never guesses a time zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: keepwell stores aware UTC timestamps")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
"""Portable JSON column: JSONB on PostgreSQL, JSON text on SQLite."""

Id = BigInteger().with_variant(Integer(), "sqlite")
"""Primary-key type: BIGINT, except INTEGER on SQLite so it aliases the rowid."""


def row_id(value: str | int) -> int | None:
    """``value`` as a row id (an int, or ASCII digits with an optional ``#``), or None when it
    is not one or lies outside BIGINT's range (the database would reject it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        digits = value.strip().removeprefix("#")
        if not (digits.isascii() and digits.isdigit()):
            return None
        value = int(digits)
    return value if -(2**63) <= value < 2**63 else None


def apply_changes(row: Any, new: dict[str, Any]) -> dict[str, list[Any]]:
    """Set ``new`` values on ``row``; return what changed as ``{name: [old, new]}`` in JSON
    terms (timestamps as ISO text, enums as their values), for timeline entries."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return value.value if isinstance(value, enum.Enum) else value

    changes: dict[str, list[Any]] = {}
    for name, value in new.items():
        old = getattr(row, name)
        if old != value:
            changes[name] = [plain(old), plain(value)]
            setattr(row, name, value)
    return changes


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every keepwell table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[dict[str, Any]]: JSONType,
        str: String(255),
    }


class TimeStampMixin:
    """``created_at`` / ``updated_at`` columns maintained by the ORM."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
