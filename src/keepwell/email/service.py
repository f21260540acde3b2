"""Outbox and suppression services: queue a message, suppress an address, count the outbox.

Services flush; the caller commits. The sender (:mod:`keepwell.email.sender`) delivers what
is queued here; the web app calls :func:`unsubscribe`, :func:`record_open` and
:func:`resolve_click` with the signed tokens from :mod:`keepwell.email.tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.email import tokens
from keepwell.email.addresses import check_header_value, normalize_address, suppression_key
from keepwell.email.models import (
    EmailEvent,
    EmailMessage,
    EmailSuppression,
    EventKind,
    MessageKind,
    MessageState,
    SuppressionReason,
)
from keepwell.errors import InvalidInput, NotFound
from keepwell.models import utcnow
from keepwell.timeline import service as timeline

__all__ = [
    "RESERVED_HEADERS",
    "OutboxStatus",
    "cancel",
    "get_message",
    "is_suppressed",
    "outbox_status",
    "queue_message",
    "record_event",
    "record_open",
    "resolve_click",
    "suppress",
    "suppressions",
    "unsubscribe",
    "unsuppress",
]

RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
)
"""Headers the sender writes itself; ``queue_message(headers=...)`` may not set them."""

SUBJECT_MAX = 998


def _check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidInput("headers must be a mapping of name to value", field="headers")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if (
            not isinstance(name, str)
            or not name
            or not all(33 <= ord(ch) <= 126 and ch != ":" for ch in name)
        ):
            raise InvalidInput(
                f"{name!r} is not a header name", field="headers", expected="e.g. Reply-To"
            )
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInput(
                f"header {name!r} is set by the sender", field="headers", expected="another header"
            )
        out[name] = check_header_value(name, value)
    return out


def _check_kind(kind: str) -> str:
    try:
        return MessageKind(kind).value
    except ValueError:
        choices = ", ".join(k.value for k in MessageKind)
        raise InvalidInput(f"unknown kind {kind!r}", field="kind", expected=choices) from None


def queue_message(
    *,
    db_session: Session,
    customer_id: int | None,
    to: str,
    subject: str,
    html: str | None,
    text: str | None,
    kind: str,
    campaign_id: int | None = None,
    variant: str | None = None,
    dedup_key: str | None = None,
    not_before: datetime | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage | None:
    """Put one message for one recipient in the outbox (state ``queued``).

    Returns the new row, or ``None`` when the address is suppressed or a message with the
    same ``dedup_key`` was queued before (queueing twice is a no-op). ``not_before`` (aware)
    holds the message until then. Raises :class:`InvalidInput` for a bad address, subject,
    kind, header or time; nothing is written then.
    """
    address = normalize_address(to)
    kind_value = _check_kind(kind)
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidInput("a subject is required", field="subject")
    check_header_value("subject", subject)
    if len(subject) > SUBJECT_MAX:
        raise InvalidInput(
            f"subject is {len(subject)} characters", field="subject", expected="at most 998"
        )
    if not (html or text):
        raise InvalidInput("a message needs an HTML or a text body", field="html")
    if not_before is not None and not_before.tzinfo is None:
        raise InvalidInput(
            "not_before has no time zone", field="not_before", expected="an aware datetime"
        )
    if variant is not None and len(variant) > 32:
        raise InvalidInput("variant is too long", field="variant", expected="at most 32 characters")
    if dedup_key is not None and not (0 < len(dedup_key) <= 255):
        raise InvalidInput("dedup_key must be 1-255 characters", field="dedup_key")
    extra = _check_headers(headers)
    if is_suppressed(db_session=db_session, address=address):
        return None
    if dedup_key is not None:
        taken = db_session.scalar(
            select(EmailMessage.id).where(EmailMessage.dedup_key == dedup_key)
        )
        if taken is not None:
            return None
    message = EmailMessage(
        customer_id=customer_id,
        to_address=address,
        subject=subject,
        html=html,
        text=text,
        headers=extra,
        kind=kind_value,
        campaign_id=campaign_id,
        variant=variant,
        dedup_key=dedup_key,
        not_before=not_before,
        state=MessageState.queued.value,
        attempts=0,
    )
    db_session.add(message)
    db_session.flush()
    return message


def get_message(*, db_session: Session, message_id: int) -> EmailMessage:
    """The outbox row ``message_id``; raises :class:`NotFound`."""
    message = db_session.get(EmailMessage, message_id)
    if message is None:
        raise NotFound(f"e-mail message {message_id} does not exist")
    return message


def cancel(
    *, db_session: Session, campaign_id: int | None = None, ids: list[int] | None = None
) -> int:
    """Cancel queued messages (of a campaign, or by id); returns how many were cancelled."""
    if campaign_id is None and not ids:
        raise InvalidInput(
            "say which messages to cancel", field="campaign_id", expected="a campaign or ids"
        )
    stmt = update(EmailMessage).where(EmailMessage.state == MessageState.queued.value)
    if campaign_id is not None:
        stmt = stmt.where(EmailMessage.campaign_id == campaign_id)
    if ids:
        stmt = stmt.where(EmailMessage.id.in_(ids))
    result = db_session.execute(
        stmt.values(state=MessageState.cancelled.value),
        execution_options={"synchronize_session": False},
    )
    db_session.flush()
    return result.rowcount or 0


# --- suppressions -------------------------------------------------------------------------


def is_suppressed(*, db_session: Session, address: str) -> bool:
    """Whether keepwell must not send to ``address`` (compared case-insensitively)."""
    key = suppression_key(address)
    return (
        db_session.scalar(select(EmailSuppression.id).where(EmailSuppression.address == key))
        is not None
    )


def _check_reason(reason: str) -> str:
    try:
        return SuppressionReason(reason).value
    except ValueError:
        choices = ", ".join(r.value for r in SuppressionReason)
        raise InvalidInput(f"unknown reason {reason!r}", field="reason", expected=choices) from None


def suppress(
    *, db_session: Session, address: str, reason: str, source: str | None = None
) -> EmailSuppression:
    """Never send to ``address`` again; returns the suppression (the first one is kept).

    Queued messages to the address are marked ``suppressed`` at once.
    """
    key = suppression_key(normalize_address(address, field="address"))
    reason_value = _check_reason(reason)
    existing = db_session.scalar(select(EmailSuppression).where(EmailSuppression.address == key))
    if existing is not None:
        return existing
    row = EmailSuppression(
        address=key, reason=reason_value, source=(source or None) and source[:255]
    )
    db_session.add(row)
    db_session.execute(
        update(EmailMessage)
        .where(
            EmailMessage.state == MessageState.queued.value,
            func.lower(EmailMessage.to_address) == key,
        )
        .values(
            state=MessageState.suppressed.value, last_error=f"address suppressed ({reason_value})"
        ),
        execution_options={"synchronize_session": False},
    )
    db_session.flush()
    return row


def unsuppress(*, db_session: Session, address: str) -> bool:
    """Allow ``address`` again; returns False when it was not suppressed."""
    key = suppression_key(address)
    result = db_session.execute(delete(EmailSuppression).where(EmailSuppression.address == key))
    db_session.flush()
    return bool(result.rowcount)


def suppressions(
    *, db_session: Session, reason: str | None = None, limit: int = 100, offset: int = 0
) -> list[EmailSuppression]:
    """Suppressed addresses, newest first."""
    stmt = select(EmailSuppression).order_by(EmailSuppression.at.desc(), EmailSuppression.id.desc())
    if reason is not None:
        stmt = stmt.where(EmailSuppression.reason == _check_reason(reason))
    return list(db_session.scalars(stmt.limit(limit).offset(offset)))


# --- events and status -----------------------------------------------------------------------


def record_event(
    *, db_session: Session, message: EmailMessage, kind: EventKind, url: str | None = None
) -> EmailEvent:
    """Store a tracking event and put it on the customer's timeline."""
    event = EmailEvent(message_id=message.id, kind=kind.value, url=url)
    db_session.add(event)
    if message.customer_id is not None:
        title = {
            EventKind.opened: "Opened e-mail",
            EventKind.clicked: "Clicked a link in e-mail",
            EventKind.unsubscribed: "Unsubscribed from e-mail",
            EventKind.bounced: "E-mail bounced",
            EventKind.delivered: "E-mail delivered",
        }[kind]
        detail = {"message": message.id, "subject": message.subject}
        if url:
            detail["url"] = url
        timeline.record(
            db_session=db_session,
            customer_id=message.customer_id,
            kind=f"email_{kind.value}",
            title=f"{title}: {message.subject}"[:500],
            detail=detail,
        )
    db_session.flush()
    return event


@dataclass(frozen=True)
class OutboxStatus:
    """How many outbox rows are in each state, and when the next queued one is due."""

    states: dict[str, int]
    suppressions: int
    next_due_at: datetime | None

    @property
    def pending(self) -> int:
        """Messages still to be sent (queued or being sent)."""
        return self.states.get("queued", 0) + self.states.get("sending", 0)


def outbox_status(*, db_session: Session, campaign_id: int | None = None) -> OutboxStatus:
    """Counts per state (every state listed), suppressions, and the next due time."""
    stmt = select(EmailMessage.state, func.count()).group_by(EmailMessage.state)
    due = select(
        func.min(func.coalesce(EmailMessage.next_attempt_at, EmailMessage.not_before))
    ).where(EmailMessage.state == MessageState.queued.value)
    if campaign_id is not None:
        stmt = stmt.where(EmailMessage.campaign_id == campaign_id)
        due = due.where(EmailMessage.campaign_id == campaign_id)
    counts = {state.value: 0 for state in MessageState}
    counts.update({state: n for state, n in db_session.execute(stmt)})
    any_queued_now = db_session.scalar(
        select(func.count())
        .select_from(EmailMessage)
        .where(
            EmailMessage.state == MessageState.queued.value,
            EmailMessage.not_before.is_(None),
            EmailMessage.next_attempt_at.is_(None),
        )
    )
    next_due = utcnow() if any_queued_now else db_session.scalar(due)
    if isinstance(next_due, str):  # SQLite returns MIN() over the type decorator as text
        next_due = datetime.fromisoformat(next_due).replace(tzinfo=utcnow().tzinfo)
    total = db_session.scalar(select(func.count()).select_from(EmailSuppression)) or 0
    return OutboxStatus(states=counts, suppressions=total, next_due_at=next_due)


# --- the public links inside e-mails (called by the web app) -------------------------------


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else Settings()


def unsubscribe(
    *, db_session: Session, token: str, settings: Settings | None = None
) -> EmailSuppression:
    """Unsubscribe the address inside a signed unsubscribe token (idempotent).

    Suppresses the address (reason ``unsubscribed``), records an ``unsubscribed`` event on the
    message and the customer's timeline the first time. Raises :class:`InvalidInput` for a
    tampered or foreign token. ``settings`` holds the signing key (default: from the
    environment).
    """
    message_id, address = tokens.read_unsubscribe(_settings(settings), token)
    already = is_suppressed(db_session=db_session, address=address)
    row = suppress(
        db_session=db_session,
        address=address,
        reason=SuppressionReason.unsubscribed.value,
        source=f"message {message_id}",
    )
    message = db_session.get(EmailMessage, message_id)
    if not already and message is not None:
        record_event(db_session=db_session, message=message, kind=EventKind.unsubscribed)
    return row


def record_open(
    *, db_session: Session, token: str, settings: Settings | None = None
) -> EmailEvent | None:
    """Record that the message in a signed open-pixel token was opened.

    Returns None when the message no longer exists; :class:`InvalidInput` for a bad token.
    """
    message_id = tokens.read_open(_settings(settings), token)
    message = db_session.get(EmailMessage, message_id)
    if message is None:
        return None
    return record_event(db_session=db_session, message=message, kind=EventKind.opened)


def resolve_click(*, db_session: Session, token: str, settings: Settings | None = None) -> str:
    """Record a click and return the URL to redirect to: only the one signed in the token.

    A tampered or foreign token raises :class:`InvalidInput` (so no open redirect).
    """
    message_id, url = tokens.read_click(_settings(settings), token)
    message = db_session.get(EmailMessage, message_id)
    if message is not None:
        record_event(db_session=db_session, message=message, kind=EventKind.clicked, url=url)
    return url
