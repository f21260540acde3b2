"""Build the demo business end to end: generate files, migrate, import, summarise.

This is what ``keepwell demo`` runs. It uses exactly the public import path a user would
(``keepwell.imports`` and ``keepwell.events``), so the demo also proves the imports work.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from keepwell import migrate
from keepwell.billing import service as billing_service
from keepwell.config import Settings
from keepwell.customers.models import Customer
from keepwell.db import engine_from_settings, session_scope
from keepwell.errors import KeepwellError
from keepwell.events.store import EventStore
from keepwell.imports.summary import ImportSummary
from keepwell.metrics.churn import customer_churn
from keepwell.metrics.sources import open_default

Progress = Callable[[str, int, int], None]

IMPORT_ORDER = ("customers", "subscriptions", "invoices", "orders", "surveys", "tickets")


@dataclass(frozen=True)
class Headline:
    """The figures ``keepwell demo`` prints: size, money and last month's churn."""

    customers: int
    active_customers: int
    mrr_minor: dict[str, int]
    churn_month: date
    churn_at_start: int
    churn_lost: int
    events: int

    @property
    def churn_rate(self) -> float | None:
        return self.churn_lost / self.churn_at_start if self.churn_at_start else None


@dataclass
class DemoResult:
    """What was loaded and the headline figures."""

    source_dir: Path
    summaries: list[ImportSummary] = field(default_factory=list)
    headline: Headline | None = None
    already_loaded: bool = False


def _month_start(day: date) -> date:
    return day.replace(day=1)


def headline(settings: Settings, *, today: date | None = None) -> Headline:
    """Customers, active customers and MRR now, and churn of the last complete month.

    Last month's churn is the metrics engine's start-cohort customer churn for the last
    complete month in the reporting time zone (7-day grace gap, trials excluded): customers
    active at the start and not at the end, divided by customers active at the start.
    """
    tz = ZoneInfo(settings.reporting_timezone)
    now = datetime.now(UTC)
    today = today or now.astimezone(tz).date()
    this_month = _month_start(today)
    last_month = _month_start(date.fromordinal(this_month.toordinal() - 1))
    engine = engine_from_settings(settings)
    try:
        src = open_default(settings, engine=engine)
        churn = src.con.execute(customer_churn(src, start=last_month, end=this_month)).iloc[0]
        with session_scope(engine) as db_session:
            result = Headline(
                customers=db_session.scalar(select(func.count(Customer.id))) or 0,
                active_customers=billing_service.active_customer_count(
                    db_session=db_session, at=now
                ),
                mrr_minor=billing_service.mrr_at(db_session=db_session, at=now),
                churn_month=last_month,
                churn_at_start=int(churn.customers_start),
                churn_lost=int(churn.start_lost),
                events=EventStore.from_settings(settings).count(),
            )
    finally:
        engine.dispose()
    return result


def _has_customers(settings: Settings) -> bool:
    engine = engine_from_settings(settings)
    try:
        if migrate.current_revision(engine) is None:
            return False
        with session_scope(engine) as db_session:
            return bool(db_session.scalar(select(func.count(Customer.id))))
    finally:
        engine.dispose()


def reset(settings: Settings) -> None:
    """Remove all keepwell data of these settings (tables and event store)."""
    engine = engine_from_settings(settings)
    try:
        if make_url(settings.resolved_database_url).get_backend_name() == "sqlite":
            engine.dispose()
            db_file = make_url(settings.resolved_database_url).database
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        elif migrate.current_revision(engine) is not None:
            migrate.downgrade(engine, "base")
    finally:
        engine.dispose()
    shutil.rmtree(settings.resolved_events_path, ignore_errors=True)


def load_demo(
    settings: Settings,
    *,
    customers: int = 2_000,
    months: int = 24,
    seed: int = 7,
    business: Literal["saas", "shop"] = "saas",
    force_reset: bool = False,
    progress: Progress | None = None,
) -> DemoResult:
    """Generate the demo business and import it into the store of ``settings``.

    If the store already holds customers, nothing is changed unless ``force_reset`` is set
    (then all keepwell data of these settings is removed first).
    """
    from keepwell.demo.generator import generate
    from keepwell.events.importer import import_events
    from keepwell.imports import service as import_service

    source = (settings.home / "demo-source" / business).resolve()
    if force_reset:
        reset(settings)
    elif _has_customers(settings):
        result = DemoResult(source_dir=source, already_loaded=True)
        result.headline = headline(settings)
        return result

    if source.exists():
        shutil.rmtree(source)
    manifest = generate(
        source, customers=customers, months=months, seed=seed, business=business, progress=progress
    )
    engine = engine_from_settings(settings)
    result = DemoResult(source_dir=source)
    try:
        migrate.upgrade(engine)
        for kind in IMPORT_ORDER:
            path = manifest.files.get(kind)
            if path is None:
                continue
            with session_scope(engine) as db_session:
                summary = import_service.import_file(
                    db_session=db_session,
                    kind=kind,
                    path=path,
                    rejects_dir=settings.rejects_dir,
                    default_currency=settings.default_currency,
                    progress=(lambda d, t, k=kind: progress(f"import {k}", d, t))
                    if progress
                    else None,
                )
            result.summaries.append(summary)
        events_path = manifest.files.get("events")
        if events_path is not None:
            with session_scope(engine) as db_session:
                known = import_service.known_customer_ids(db_session=db_session)
            result.summaries.append(
                import_events(
                    events_path,
                    store=EventStore.from_settings(settings),
                    known_customer_ids=known,
                    rejects_dir=settings.rejects_dir,
                    progress=(lambda d, t: progress("import events", d, t)) if progress else None,
                )
            )
    finally:
        engine.dispose()
    rejected = sum(s.rejected for s in result.summaries)
    if rejected:
        raise KeepwellError(
            f"the demo data had {rejected} rejected rows; this is a bug in the generator",
            hint=f"see the rejects files in {settings.rejects_dir}",
        )
    result.headline = headline(settings)
    return result
