"""customer_edits service on SQLite and PostgreSQL: rules, timeline entries, no partial writes."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from keepwell.customers.models import CustomerStatus
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.timeline.models import TimelineEntry
from keepwell.web import customer_edits as edits
from tests.factories import at, make_customer


def entries(db_session: Session, customer_id: int) -> list[str]:
    return [
        e.kind
        for e in db_session.query(TimelineEntry)
        .filter_by(customer_id=customer_id)
        .order_by(TimelineEntry.id)
    ]


def test_create_records_and_tags(db_session: Session) -> None:
    customer = edits.create_customer(
        db_session=db_session,
        external_id="ce_1",
        name="Ce",
        country="fr",
        signup_at=at(2026, 2, 1),
        tags=["vip", "vip", "beta"],
    )
    assert customer.country == "FR"
    assert sorted(t.name for t in customer.tags) == ["beta", "vip"]
    assert entries(db_session, customer.id) == ["customer.created", "tag.added", "tag.added"]
    with pytest.raises(AlreadyExists):
        edits.create_customer(db_session=db_session, external_id="ce_1", name="Again")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "x" * 256}, "name"),
        ({"name": " "}, "name"),
        ({"email": "e" * 321}, "email"),
        ({"industry": "i" * 121}, "industry"),
        ({"country": "FRA"}, "country"),
        ({"time_zone": "Nowhere/Land"}, "time_zone"),
        ({"owner_email": "ghost@example.com"}, "owner_email"),
    ],
)
def test_create_refuses_bad_fields(db_session: Session, kwargs: dict, field: str) -> None:
    values = {"external_id": "ce_bad", "name": "Ok", **kwargs}
    with pytest.raises(InvalidInput) as caught:
        edits.create_customer(db_session=db_session, **values)
    assert caught.value.field == field
    with pytest.raises(NotFound):
        edits.get_customer_or_raise(db_session=db_session, external_id="ce_bad")


def test_update_changes_only_what_differs(db_session: Session) -> None:
    customer = make_customer(db_session, name="Old", industry="retail")
    edits.update_customer(
        db_session=db_session,
        customer=customer,
        changes={"name": "New", "industry": "retail", "status": CustomerStatus.churned},
    )
    assert (customer.name, customer.status) == ("New", CustomerStatus.churned)
    assert entries(db_session, customer.id) == ["customer.updated"]
    edits.update_customer(db_session=db_session, customer=customer, changes={"name": "New"})
    assert entries(db_session, customer.id) == ["customer.updated"]  # nothing changed
    for changes, field in (
        ({"external_id": "x"}, "external_id"),
        ({"name": None}, "name"),
        ({"company": "c" * 256}, "company"),
    ):
        with pytest.raises(InvalidInput) as caught:
            edits.update_customer(db_session=db_session, customer=customer, changes=changes)
        assert caught.value.field == field


def test_tags_contacts_notes(db_session: Session) -> None:
    customer = make_customer(db_session)
    edits.add_tag(db_session=db_session, customer=customer, name="  champion ")
    edits.add_tag(db_session=db_session, customer=customer, name="champion")
    assert [t.name for t in customer.tags] == ["champion"]
    counts = dict((t.name, n) for t, n in edits.list_tags(db_session=db_session))
    assert counts["champion"] == 1
    assert edits.remove_tag(db_session=db_session, customer=customer, name="champion") is True
    assert edits.remove_tag(db_session=db_session, customer=customer, name="champion") is False
    assert edits.remove_tag(db_session=db_session, customer=customer, name="never") is False
    with pytest.raises(InvalidInput):
        edits.add_tag(db_session=db_session, customer=customer, name="t" * 81)
    contact = edits.add_contact(db_session=db_session, customer=customer, name="Di")
    with pytest.raises(InvalidInput) as caught:
        edits.add_contact(db_session=db_session, customer=customer, name="Di", phone="1" * 65)
    assert caught.value.field == "phone"
    other = make_customer(db_session)
    with pytest.raises(NotFound):
        edits.delete_contact(db_session=db_session, customer=other, contact_id=contact.id)
    edits.delete_contact(db_session=db_session, customer=customer, contact_id=contact.id)
    assert customer.contacts == []
    note = edits.add_note(db_session=db_session, customer=customer, body="<i>intact</i>\n")
    assert edits.list_notes(db_session=db_session, customer=customer) == [note]
    with pytest.raises(InvalidInput):
        edits.add_note(db_session=db_session, customer=customer, body="  ")


def test_notes_go_through_the_notes_service(db_session: Session) -> None:
    from keepwell.customers.notes import BODY_MAX

    customer = make_customer(db_session)
    note = edits.add_note(db_session=db_session, customer=customer, body="  <b>call</b> back\n")
    assert note.body == "<b>call</b> back"  # trimmed like every other note
    with pytest.raises(InvalidInput) as caught:
        edits.add_note(db_session=db_session, customer=customer, body="n" * (BODY_MAX + 1))
    assert caught.value.field == "body"
    with pytest.raises(NotFound, match="no staff user with id 987654"):
        edits.add_note(db_session=db_session, customer=customer, body="hi", author_id=987654)
    assert edits.list_notes(db_session=db_session, customer=customer) == [note]
