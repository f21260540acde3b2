"""Typed settings, read from ``KEEPWELL_*`` environment variables (or a ``.env`` file).

Nothing is read at import time: build :class:`Settings` once at the edge (CLI, server, test)
and pass it down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """keepwell's configuration.

    Attributes:
        home: data directory; the embedded default keeps everything here.
        database_url: SQLAlchemy URL of the operational store. Default: SQLite file in ``home``.
        events_path: directory of the usage-event store (a Delta Lake table).
        reporting_timezone: IANA zone in which days and months are counted for reports.
        default_currency: ISO 4217 code used when an import gives none.
    """

    model_config = SettingsConfigDict(env_prefix="KEEPWELL_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path("keepwell-data"))
    database_url: str | None = None
    events_path: Path | None = None
    reporting_timezone: str = "UTC"
    default_currency: str = "USD"

    @field_validator("reporting_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin')") from exc
        return value

    @property
    def resolved_database_url(self) -> str:
        """The operational store URL; SQLite under ``home`` unless configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'keepwell.db').resolve()}"

    @property
    def resolved_events_path(self) -> Path:
        """Directory of the event store."""
        return (self.events_path or self.home / "events").resolve()

    @property
    def rejects_dir(self) -> Path:
        """Where imports write the rows they rejected, with reasons."""
        return (self.home / "rejects").resolve()
