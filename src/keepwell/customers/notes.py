"""Notes service: staff write, edit and delete free-text notes on a customer.

The timeline reads notes from their table (a note shows at the time it was written, with its
current text); edits and deletions are recorded as timeline entries of kind ``note``.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer, Note
from keepwell.errors import InvalidInput, NotFound
from keepwell.timeline import service as timeline
from keepwell.users.models import StaffUser

BODY_MAX = 20_000
EXCERPT = 80


def _body(body: str) -> str:
    text = (body or "").strip()
    if not text:
        raise InvalidInput("a note needs text", field="body", expected="non-empty text")
    if len(text) > BODY_MAX:
        raise InvalidInput(
            f"note is {len(text):,} characters long", field="body", expected=f"at most {BODY_MAX:,}"
        )
    return text


def _author(db_session: Session, author_id: int | None, field: str) -> None:
    if author_id is None:
        return
    if db_session.get(StaffUser, author_id) is None:
        raise NotFound(f"no staff user with id {author_id}", hint=f"check {field}")


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def get_or_raise(*, db_session: Session, note_id: int) -> Note:
    """The note with this id, or :class:`NotFound`."""
    note = db_session.get(Note, note_id)
    if note is None:
        raise NotFound(f"no note with id {note_id}")
    return note


def add_note(
    *, db_session: Session, customer_id: int, body: str, author_id: int | None = None
) -> Note:
    """Write a note on a customer (it appears on the customer's timeline)."""
    text = _body(body)
    if db_session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        raise NotFound(f"no customer with id {customer_id}")
    _author(db_session, author_id, "author_id")
    note = Note(customer_id=customer_id, body=text, author_id=author_id)
    db_session.add(note)
    db_session.flush()
    return note


def edit_note(
    *, db_session: Session, note_id: int, body: str, editor_id: int | None = None
) -> Note:
    """Replace a note's text; the edit is recorded on the timeline."""
    note = get_or_raise(db_session=db_session, note_id=note_id)
    text = _body(body)
    _author(db_session, editor_id, "editor_id")
    if text == note.body:
        return note
    previous = note.body
    note.body = text
    db_session.flush()
    timeline.record(
        db_session=db_session,
        customer_id=note.customer_id,
        kind="note",
        title=f"Note edited: {_excerpt(text)}",
        detail={"note_id": note.id, "previous": previous},
        actor_id=editor_id,
    )
    return note


def delete_note(*, db_session: Session, note_id: int, actor_id: int | None = None) -> None:
    """Delete a note; the timeline keeps an entry saying it was deleted (with its text)."""
    note = get_or_raise(db_session=db_session, note_id=note_id)
    _author(db_session, actor_id, "actor_id")
    timeline.record(
        db_session=db_session,
        customer_id=note.customer_id,
        kind="note",
        title=f"Note deleted: {_excerpt(note.body)}",
        detail={"note_id": note.id, "body": note.body, "author_id": note.author_id},
        actor_id=actor_id,
    )
    db_session.delete(note)
    db_session.flush()


def list_notes(
    *, db_session: Session, customer_id: int, limit: int = 50, offset: int = 0
) -> list[Note]:
    """A customer's notes, newest first."""
    if limit < 1 or offset < 0:
        raise InvalidInput("limit must be >= 1 and offset >= 0", field="limit")
    query = (
        select(Note)
        .where(Note.customer_id == customer_id)
        .order_by(Note.created_at.desc(), Note.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(db_session.scalars(query))


def count_notes(*, db_session: Session, customer_id: int) -> int:
    """How many notes a customer has."""
    query = select(func.count(Note.id)).where(Note.customer_id == customer_id)
    return int(db_session.scalar(query) or 0)


__all__ = ["add_note", "count_notes", "delete_note", "edit_note", "get_or_raise", "list_notes"]
