"""Notes: add / edit / delete with author, list per customer, on the timeline."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from keepwell.customers import notes
from keepwell.errors import InvalidInput, NotFound
from keepwell.timeline import service as timeline
from tests.factories import make_customer
from tests.tasks.helpers import make_staff


def test_add_list_edit_delete_on_the_timeline(db_session: Session) -> None:
    c, other = make_customer(db_session), make_customer(db_session)
    ana = make_staff(db_session, "Ana")
    first = notes.add_note(
        db_session=db_session, customer_id=c.id, body="  Called them  ", author_id=ana.id
    )
    second = notes.add_note(db_session=db_session, customer_id=c.id, body="Sent the offer")
    notes.add_note(db_session=db_session, customer_id=other.id, body="elsewhere")
    assert first.body == "Called them" and first.author_id == ana.id
    listed = notes.list_notes(db_session=db_session, customer_id=c.id)
    assert [n.id for n in listed] == [second.id, first.id]  # newest first
    assert {n.body for n in listed} == {"Called them", "Sent the offer"}
    assert notes.count_notes(db_session=db_session, customer_id=c.id) == 2

    notes.edit_note(
        db_session=db_session, note_id=first.id, body="Called them twice", editor_id=ana.id
    )
    assert first.body == "Called them twice"
    notes.delete_note(db_session=db_session, note_id=second.id, actor_id=ana.id)
    assert [n.id for n in notes.list_notes(db_session=db_session, customer_id=c.id)] == [first.id]

    items = timeline.for_customer(db_session=db_session, customer_id=c.id)
    got = sorted((i.kind, i.title) for i in items)
    assert got == [
        ("note", "Called them twice"),  # the note itself, with its current text
        ("note", "Note deleted: Sent the offer"),
        ("note", "Note edited: Called them twice"),
    ]
    edited = next(i for i in items if i.title.startswith("Note edited"))
    assert edited.detail == {"note_id": first.id, "previous": "Called them"}


def test_edit_with_same_text_records_nothing(db_session: Session) -> None:
    c = make_customer(db_session)
    note = notes.add_note(db_session=db_session, customer_id=c.id, body="x")
    notes.edit_note(db_session=db_session, note_id=note.id, body=" x ")
    assert len(timeline.for_customer(db_session=db_session, customer_id=c.id)) == 1


def test_bad_input(db_session: Session) -> None:
    c = make_customer(db_session)
    with pytest.raises(InvalidInput, match="field 'body': a note needs text"):
        notes.add_note(db_session=db_session, customer_id=c.id, body="   ")
    with pytest.raises(InvalidInput, match="field 'body': note is 20,001 characters long"):
        notes.add_note(db_session=db_session, customer_id=c.id, body="x" * 20_001)
    with pytest.raises(NotFound, match="no customer with id 123456"):
        notes.add_note(db_session=db_session, customer_id=123_456, body="hi")
    with pytest.raises(NotFound, match="no staff user with id 654321"):
        notes.add_note(db_session=db_session, customer_id=c.id, body="hi", author_id=654_321)
    assert notes.list_notes(db_session=db_session, customer_id=c.id) == []
    note = notes.add_note(db_session=db_session, customer_id=c.id, body="hi")
    with pytest.raises(InvalidInput, match="field 'body'"):
        notes.edit_note(db_session=db_session, note_id=note.id, body="")
    assert note.body == "hi"
    with pytest.raises(NotFound, match="no note with id 999999"):
        notes.delete_note(db_session=db_session, note_id=999_999)
    with pytest.raises(InvalidInput, match="field 'limit'"):
        notes.list_notes(db_session=db_session, customer_id=c.id, limit=0)


def test_notes_cli(monkeypatch, tmp_path, isolated_database_url) -> None:
    from typer.testing import CliRunner

    from keepwell.cli import app
    from tests.tasks.helpers import migrated_home, seeded

    url = migrated_home(monkeypatch, tmp_path, isolated_database_url)
    with seeded(url) as s:
        make_customer(s, external_id="acme")
        make_staff(s, "Ana", email="ana@example.com")
    runner = CliRunner()
    added = runner.invoke(
        app, ["notes", "add", "acme", "Prefers calls [after 3pm]", "--author", "ana@example.com"]
    )
    assert added.exit_code == 0, added.output
    assert "Added note" in added.output
    listed = runner.invoke(app, ["notes", "list", "acme"])
    assert listed.exit_code == 0, listed.output
    assert "Prefers calls [after 3pm]" in listed.output and "ana@example.com" in listed.output
    empty = runner.invoke(app, ["notes", "add", "acme", "  "])
    assert empty.exit_code == 1 and "field 'body'" in empty.output
    missing = runner.invoke(app, ["notes", "list", "nobody"])
    assert missing.exit_code == 1 and "no customer 'nobody'" in missing.output
    stranger = runner.invoke(app, ["notes", "add", "acme", "hi", "--author", "x@example.com"])
    assert stranger.exit_code == 1 and "no staff user" in stranger.output
