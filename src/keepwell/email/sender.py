"""The SMTP sender: delivers due outbox rows over persistent aiosmtplib connections.

How one run works::

    recover   rows a dead sender left in "sending": sent-log says delivered -> sent,
              otherwise -> queued again (never reached the server)
    claim     a batch of due rows -> "sending" (committed BEFORE any SMTP transaction)
    send      ``send_concurrency`` connections, throttled to ``send_rate`` messages/s;
              each 250 is appended to the run's sent-log at once
    record    grouped: sent / retry later (4xx, exponential backoff) / bounced (5xx,
              address suppressed) / failed, committed every ~0.3 s

A crash loses nothing and sends nobody twice: a row is only ever "sending" while its run's
sent-log is locked, and the log holds every acceptance the database has not recorded yet.
The one unclosable gap is the instant between the server's 250 and the log write; the
Message-ID is the same on every attempt, so a receiving system can still drop a repeat.
Rows claimed by a sender whose sent-log is not on this machine are left alone for an hour,
then marked failed ("delivery unknown") rather than risking a second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import aiosmtplib
from sqlalchemy import Engine, and_, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.db import engine_from_settings, make_sessionmaker, require_schema
from keepwell.email import service
from keepwell.email.compose import Composer, OutgoingMessage
from keepwell.email.journal import SentLog, read_dead_log, remove_log
from keepwell.email.models import (
    EmailMessage,
    EmailSuppression,
    EventKind,
    MessageState,
    SuppressionReason,
)
from keepwell.email.tokens import unsubscribe_url
from keepwell.errors import InvalidInput
from keepwell.models import utcnow
from keepwell.timeline.models import TimelineEntry

__all__ = [
    "BACKOFF_BASE",
    "BATCH_SIZE",
    "MAX_ATTEMPTS",
    "SendReport",
    "backoff",
    "send_due",
    "send_until_empty",
]

MAX_ATTEMPTS = 5
"""SMTP attempts per message; after the last temporary failure it is ``failed``."""
BACKOFF_BASE = timedelta(minutes=1)
"""Wait after the first temporary failure; doubles with each further one."""
BATCH_SIZE = 500
"""Rows claimed per database transaction."""
STALE_CLAIM = timedelta(hours=1)
"""A foreign ``sending`` row (no sent-log here) older than this is given up as unknown."""
FLUSH_SECONDS = 0.3


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` temporary failures: 1, 2, 4, 8 min.

    >>> [int(backoff(n).total_seconds()) for n in (1, 2, 3, 4)]
    [60, 120, 240, 480]
    """
    return BACKOFF_BASE * (2 ** max(0, attempts - 1))


@dataclass
class SendReport:
    """What one sender run did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    bounced: int = 0
    suppressed: int = 0
    recovered_sent: int = 0
    recovered_requeued: int = 0
    recovered_unknown: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        """SMTP transactions tried in this run."""
        return self.sent + self.retried + self.failed + self.bounced

    @property
    def rate(self) -> float:
        """Messages accepted by the server per second of the run."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Result:
    message: OutgoingMessage
    outcome: str  # sent | retry | bounced | failed
    detail: str
    at: datetime
    attempts: int = 0


class _Throttle:
    """Spaces hand-overs ``1/rate`` seconds apart across all connections (0 = no cap)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _journal_dir(settings: Settings) -> Path:
    return settings.home.resolve() / "email-sent-log"


def _classify(exc: Exception) -> tuple[str, str]:
    """(outcome, text) for an SMTP failure: 4xx/connection -> retry, 5xx -> bounce/fail."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        code = first.code if first is not None else 450
        text = f"{code} {first.message if first is not None else exc}"
        return ("bounced" if 500 <= code < 600 else "retry"), text
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        # The server refused *our* sender address: not the recipient's fault.
        return ("failed" if exc.code >= 500 else "retry"), f"{exc.code} {exc.message} (MAIL FROM)"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if 500 <= exc.code < 600:
            return "bounced", f"{exc.code} {exc.message}"
        return "retry", f"{exc.code} {exc.message}"
    return "retry", f"{exc.__class__.__name__}: {exc}"


class _Run:
    """One sender run (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        now: datetime | None,
        limit: int | None,
        ids: Sequence[int] | None,
        on_progress: Callable[[SendReport], None] | None,
    ) -> None:
        # Resolve the signing key once (it may live in a file) for every link of the run.
        key = settings.resolved_secret_key().decode()
        settings = settings.model_copy(update={"secret_key": key})
        self.settings = settings
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self.fixed_now = now
        self.limit = limit
        self.ids = list(ids) if ids is not None else None
        self.on_progress = on_progress
        self.run_id = uuid.uuid4().hex
        self.report = SendReport()
        self.results: list[_Result] = []
        self.composer = Composer(
            mail_from=settings.mail_from,
            secret=settings.resolved_secret_key(),
            unsubscribe_url=lambda message: unsubscribe_url(settings, message),
        )
        self.stop_claiming = False
        self.attempts: dict[int, int] = {}
        self.batches = 0
        self.db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keepwell-db")

    def now(self) -> datetime:
        return self.fixed_now or utcnow()

    # --- database side (runs in a worker thread) --------------------------------------

    def recover(self) -> None:
        """Resolve rows left in ``sending`` by dead senders (their sent-log decides)."""
        directory = _journal_dir(self.settings)
        with self.sessions() as db:
            claims = db.execute(
                select(EmailMessage.claimed_by, func.max(EmailMessage.updated_at))
                .where(EmailMessage.state == MessageState.sending.value)
                .group_by(EmailMessage.claimed_by)
            ).all()
            runs: dict[str, tuple[list[str | None], datetime | None]] = {}
            for tag, last in claims:
                run_id = (tag or "").split(".")[0]
                tags, newest = runs.get(run_id, ([], None))
                newest = last if newest is None or (last is not None and last > newest) else newest
                runs[run_id] = ([*tags, tag], newest)
            for run_id, (tags, last) in runs.items():
                named = [t for t in tags if t is not None]
                conditions = [EmailMessage.claimed_by.in_(named)] if named else []
                if None in tags:
                    conditions.append(EmailMessage.claimed_by.is_(None))
                sending = and_(EmailMessage.state == MessageState.sending.value, or_(*conditions))
                sent = read_dead_log(directory, run_id) if run_id else None
                if sent is None:
                    if last is not None and utcnow() - last < STALE_CLAIM:
                        continue  # maybe alive elsewhere: leave its rows alone
                    count = db.execute(
                        update(EmailMessage)
                        .where(sending)
                        .values(
                            state=MessageState.failed.value,
                            claimed_by=None,
                            last_error="the sender stopped mid-send and its sent-log is "
                            "not here: delivery unknown, not resent to avoid a duplicate",
                        )
                    ).rowcount
                    self.report.recovered_unknown += count or 0
                    db.commit()
                    continue
                rows = db.execute(
                    select(EmailMessage.id, EmailMessage.customer_id, EmailMessage.subject).where(
                        sending
                    )
                ).all()
                done = [r for r in rows if r.id in sent]
                if done:
                    self._mark_sent(
                        db,
                        [
                            (r.id, r.customer_id, r.subject, sent[r.id], "250 (from sent-log)")
                            for r in done
                        ],
                    )
                requeued = db.execute(
                    update(EmailMessage)
                    .where(sending)
                    .where(EmailMessage.id.not_in([r.id for r in done]) if done else true())
                    .values(state=MessageState.queued.value, claimed_by=None)
                ).rowcount
                db.commit()
                remove_log(directory, run_id)
                self.report.recovered_sent += len(done)
                self.report.recovered_requeued += requeued or 0

    def claim(self, size: int) -> list[OutgoingMessage]:
        """Move up to ``size`` due rows to ``sending`` (committed) and return them.

        On SQLite the transaction starts with the UPDATE (a writer from its first statement,
        so it waits for other writers instead of failing); on PostgreSQL the due rows are
        locked with ``FOR UPDATE SKIP LOCKED`` so several senders can claim side by side.
        """
        now = self.now()
        self.batches += 1
        tag = f"{self.run_id}.{self.batches}"
        due = select(EmailMessage.id).where(
            EmailMessage.state == MessageState.queued.value,
            or_(EmailMessage.not_before.is_(None), EmailMessage.not_before <= now),
            or_(EmailMessage.next_attempt_at.is_(None), EmailMessage.next_attempt_at <= now),
        )
        if self.ids is not None:
            due = due.where(EmailMessage.id.in_(self.ids))
        # (state, not_before) is indexed; within equal not_before, id order (oldest first).
        due = due.order_by(EmailMessage.not_before, EmailMessage.id).limit(size)
        due = due.with_for_update(skip_locked=True)
        with self.sessions() as db:
            if self.engine.dialect.name == "postgresql":
                # Lock the rows first: PostgreSQL may rescan an IN (... SKIP LOCKED) subquery.
                picked = list(db.scalars(due))
            else:
                picked = due.correlate(None).scalar_subquery()
            claimed = db.scalars(
                update(EmailMessage)
                .where(EmailMessage.id.in_(picked))
                .where(EmailMessage.state == MessageState.queued.value)
                .values(
                    state=MessageState.sending.value,
                    claimed_by=tag,
                    attempts=EmailMessage.attempts + 1,
                )
                .returning(EmailMessage.id),
                execution_options={"synchronize_session": False},
            ).all()
            if not claimed:
                db.commit()
                return []
            rows = db.execute(
                select(
                    EmailMessage.id,
                    EmailMessage.to_address,
                    EmailMessage.subject,
                    EmailMessage.html,
                    EmailMessage.text,
                    EmailMessage.kind,
                    EmailMessage.customer_id,
                    EmailMessage.headers,
                    EmailMessage.attempts,
                )
                .where(EmailMessage.id.in_(claimed))
                .order_by(EmailMessage.id)
            ).all()
            keys = {service.suppression_key(r.to_address) for r in rows}
            blocked = set(
                db.scalars(
                    select(EmailSuppression.address).where(EmailSuppression.address.in_(keys))
                )
            ) if keys else set()  # fmt: skip
            stopped = [r.id for r in rows if service.suppression_key(r.to_address) in blocked]
            if stopped:
                db.execute(
                    update(EmailMessage)
                    .where(EmailMessage.id.in_(stopped))
                    .values(
                        state=MessageState.suppressed.value,
                        claimed_by=None,
                        last_error="address suppressed",
                    ),
                    execution_options={"synchronize_session": False},
                )
                self.report.suppressed += len(stopped)
                rows = [r for r in rows if r.id not in set(stopped)]
            db.commit()
        for r in rows:
            self.attempts[r.id] = r.attempts
        return [
            OutgoingMessage(
                id=r.id,
                to_address=r.to_address,
                subject=r.subject,
                html=r.html,
                text=r.text,
                kind=r.kind,
                customer_id=r.customer_id,
                headers=r.headers or {},
            )
            for r in rows
        ]

    def _mark_sent(
        self, db: Session, rows: list[tuple[int, int | None, str, datetime, str]]
    ) -> None:
        """Mark rows sent (one executemany) and put them on their customers' timelines."""
        table = EmailMessage.__table__
        db.execute(
            table.update()
            .where(table.c.id == bindparam("row_id"))
            .values(
                state=MessageState.sent.value,
                sent_at=bindparam("at"),
                updated_at=bindparam("at"),
                smtp_response=bindparam("response"),
                message_id=bindparam("mid"),
                claimed_by=None,
                last_error=None,
            ),
            [
                {
                    "row_id": mid,
                    "at": at,
                    "response": response[:1000],
                    "mid": self.composer.message_id(mid),
                }
                for mid, _, _, at, response in rows
            ],
        )
        entries = [
            {
                "customer_id": customer_id,
                "occurred_at": at,
                "kind": "email_sent",
                "title": f"E-mail sent: {subject}"[:500],
                "detail": {"message": mid},
                "actor_id": None,
            }
            for mid, customer_id, subject, at, _ in rows
            if customer_id is not None
        ]
        if entries:
            db.execute(TimelineEntry.__table__.insert(), entries)

    def record(self, results: list[_Result]) -> None:
        """Write a group of outcomes in one transaction."""
        with self.sessions() as db:
            sent = [
                (r.message.id, r.message.customer_id, r.message.subject, r.at, r.detail)
                for r in results
                if r.outcome == "sent"
            ]
            if sent:
                self._mark_sent(db, sent)
            for r in results:
                if r.outcome == "sent":
                    continue
                values: dict = {"claimed_by": None, "last_error": r.detail[:2000]}
                if r.outcome == "retry" and r.attempts < MAX_ATTEMPTS:
                    values.update(
                        state=MessageState.queued.value, next_attempt_at=r.at + backoff(r.attempts)
                    )
                elif r.outcome == "bounced":
                    values.update(state=MessageState.bounced.value, smtp_response=r.detail[:1000])
                else:
                    values.update(state=MessageState.failed.value)
                db.execute(
                    update(EmailMessage).where(EmailMessage.id == r.message.id).values(**values)
                )
                if r.outcome == "bounced":
                    service.suppress(
                        db_session=db,
                        address=r.message.to_address,
                        reason=SuppressionReason.hard_bounce.value,
                        source=f"message {r.message.id}: {r.detail}",
                    )
                    message = db.get(EmailMessage, r.message.id)
                    service.record_event(db_session=db, message=message, kind=EventKind.bounced)
            db.commit()
        for r in results:
            if r.outcome == "sent":
                self.report.sent += 1
            elif r.outcome == "retry" and r.attempts < MAX_ATTEMPTS:
                self.report.retried += 1
            elif r.outcome == "bounced":
                self.report.bounced += 1
            else:
                self.report.failed += 1

    # --- SMTP side (the event loop) ---------------------------------------------------

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            timeout=s.smtp_timeout,
        )

    async def _worker(self, queue: asyncio.Queue, throttle: _Throttle, log: SentLog) -> None:
        client: aiosmtplib.SMTP | None = None
        try:
            while True:
                message = await queue.get()
                if message is None:
                    return
                attempts = self.attempts.get(message.id, 1)
                if self.stop_claiming and client is None:
                    self.results.append(
                        _Result(
                            message,
                            "retry",
                            "not attempted: SMTP server unreachable",
                            self.now(),
                            attempts,
                        )
                    )
                    continue
                try:
                    data = self.composer.compose(message)
                except Exception as exc:  # a row that cannot become a message: fail it, go on
                    text = f"cannot compose the message: {exc.__class__.__name__}: {exc}"
                    self.results.append(_Result(message, "failed", text, self.now(), attempts))
                    continue
                connecting = client is None or not client.is_connected
                try:
                    if connecting:  # connect first: the throttle spaces the messages
                        client = self._client()
                        await client.connect()
                    await throttle.wait()
                    _, response = await client.sendmail(
                        self.composer.envelope_from, [message.to_address], data
                    )
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                    outcome, text = _classify(exc)
                    refused = (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused)
                    if not isinstance(exc, refused):
                        if client is not None:
                            client.close()
                        client = None  # the connection is gone; reconnect for the next one
                        if connecting:  # cannot reach the server: stop claiming more
                            self.stop_claiming = True
                            self.report.errors.append(text)
                    self.results.append(_Result(message, outcome, text, self.now(), attempts))
                    continue
                except Exception as exc:  # e.g. an address the server cannot encode
                    if client is not None:
                        client.close()
                    client = None
                    text = f"{exc.__class__.__name__}: {exc}"
                    self.results.append(_Result(message, "failed", text, self.now(), attempts))
                    continue
                at = utcnow()
                log.sent(message.id, at)
                self.results.append(_Result(message, "sent", f"250 {response}", at, attempts))
        finally:
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

    async def _db(self, func, *args):
        """Run ``func`` on the run's one database thread (claims and updates never overlap)."""
        return await asyncio.get_running_loop().run_in_executor(self.db_thread, func, *args)

    async def _flush(self, log: SentLog) -> None:
        if not self.results:
            return
        batch, self.results = self.results, []
        await self._db(log.sync)
        await self._db(self.record, batch)
        if self.on_progress is not None:
            self.on_progress(self.report)

    async def run(self) -> SendReport:
        started = time.monotonic()
        await self._db(self.recover)
        log = SentLog(_journal_dir(self.settings), self.run_id)
        clean = False
        try:
            concurrency = self.settings.send_concurrency
            queue: asyncio.Queue = asyncio.Queue(maxsize=2 * BATCH_SIZE)
            throttle = _Throttle(self.settings.send_rate)
            workers = [
                asyncio.create_task(self._worker(queue, throttle, log)) for _ in range(concurrency)
            ]
            done = asyncio.Event()

            async def flusher() -> None:
                while not done.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), FLUSH_SECONDS)
                    await self._flush(log)

            flush_task = asyncio.create_task(flusher())
            claimed = 0
            try:
                while not self.stop_claiming:
                    size = (
                        BATCH_SIZE if self.limit is None else min(BATCH_SIZE, self.limit - claimed)
                    )
                    if size <= 0:
                        break
                    batch = await self._db(self.claim, size)
                    if not batch:
                        break
                    claimed += len(batch)
                    for message in batch:
                        await queue.put(message)
            finally:
                for _ in workers:
                    await queue.put(None)
                await asyncio.gather(*workers)
                done.set()
                await flush_task
            await self._flush(log)
            clean = True
        finally:
            log.close(remove=clean)
            self.db_thread.shutdown(wait=True)
            self.report.seconds = time.monotonic() - started
        return self.report


def send_due(
    settings: Settings,
    *,
    limit: int | None = None,
    now: datetime | None = None,
    ids: Sequence[int] | None = None,
    on_progress: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """Send every due queued message (at most ``limit``) once; returns what happened.

    ``now`` (aware) replaces the clock for choosing due rows and scheduling retries (for
    tests and replays); ``ids`` restricts the run to those outbox rows. Synchronous: runs the
    asyncio sender to completion. Raises :class:`~keepwell.errors.StoreError` when the
    database is not migrated.
    """
    if limit is not None and limit < 0:
        raise InvalidInput("limit must be >= 0", field="limit")
    if now is not None and now.tzinfo is None:
        raise InvalidInput("now has no time zone", field="now", expected="an aware datetime")
    engine = engine_from_settings(settings)
    try:
        require_schema(engine)
        run = _Run(settings, engine, now=now, limit=limit, ids=ids, on_progress=on_progress)
        return asyncio.run(run.run())
    finally:
        engine.dispose()


def send_until_empty(
    settings: Settings,
    *,
    max_wait: float = 3600.0,
    on_progress: Callable[[SendReport], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Keep sending until nothing is queued or sending, waiting for retries that fall due.

    Gives up waiting when the next due message is more than ``max_wait`` seconds away.
    """
    total = SendReport()
    while True:
        report = send_due(settings, on_progress=on_progress)
        for name in (
            "sent",
            "retried",
            "failed",
            "bounced",
            "suppressed",
            "recovered_sent",
            "recovered_requeued",
            "recovered_unknown",
            "seconds",
        ):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.errors += report.errors
        engine = engine_from_settings(settings)
        try:
            with make_sessionmaker(engine)() as db:
                status = service.outbox_status(db_session=db)
        finally:
            engine.dispose()
        if status.pending == 0 or status.next_due_at is None:
            return total
        wait = (status.next_due_at - utcnow()).total_seconds()
        if wait > max_wait:
            return total
        if wait > 0:
            sleep(min(wait, 60.0))
        elif report.attempted == 0 and report.suppressed == 0:
            sleep(1.0)  # rows held by another live sender
