"""Typed settings, read from ``KEEPWELL_*`` environment variables (or a ``.env`` file).

Nothing is read at import time: build :class:`Settings` once at the edge (CLI, server, test)
and pass it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
        secret_key: key that signs tokens (unsubscribe, tracking, sessions). Default: a random
            key created once in ``home/secret.key`` (mode 0600).
        base_url: public URL of the keepwell server, used in links inside e-mails.
        smtp_host, smtp_port, smtp_username, smtp_password: the outgoing mail server.
        smtp_tls: ``none``, ``starttls`` or ``tls`` (implicit TLS, usually port 465).
        smtp_timeout: seconds before an SMTP operation is abandoned.
        mail_from: the From address of e-mails keepwell sends.
        send_rate: most messages per second the sender hands to the SMTP server (0 = no cap).
        send_concurrency: SMTP connections used in parallel.
        stripe_webhook_secret: signing secret of the Stripe webhook endpoint (``whsec_...``).
        automation_interval_seconds: seconds between the automation runs the web server
            starts in the background (the first one interval after start-up); 0 = off.
        warm_interval_seconds: how often the web server checks whether the data changed and,
            if so, recomputes the dashboard's figures in the background; 0 = off.
        dashboard_wait_seconds: how long a dashboard request waits for figures being computed
            before it shows the previous figures (or a "computing" notice) instead.
    """

    model_config = SettingsConfigDict(env_prefix="KEEPWELL_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path("keepwell-data"))
    database_url: str | None = None
    events_path: Path | None = None
    reporting_timezone: str = "UTC"
    default_currency: str = "USD"
    secret_key: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout: float = Field(default=30.0, gt=0)
    mail_from: str = "keepwell <noreply@localhost>"
    send_rate: float = Field(default=0.0, ge=0)
    send_concurrency: int = Field(default=4, ge=1, le=64)
    stripe_webhook_secret: str | None = None
    automation_interval_seconds: int = Field(default=300, ge=0)
    warm_interval_seconds: int = Field(default=60, ge=0)
    dashboard_wait_seconds: float = Field(default=10.0, ge=0)

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

    def resolved_secret_key(self) -> bytes:
        """The signing key: ``secret_key`` if set, else ``home/secret.key`` (created once)."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.home.resolve() / "secret.key"
        if not path.exists():
            import os
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()
