"""Tags on SQLite and PostgreSQL: one customer, in bulk, by segment; all on the timeline."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.customers import tags
from keepwell.customers.models import Customer, Tag
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.segments import service
from keepwell.timeline.models import TimelineEntry
from tests.factories import make_customer


def _titles(db_session: Session, customer: Customer) -> list[str]:
    return list(
        db_session.scalars(
            select(TimelineEntry.title)
            .where(TimelineEntry.customer_id == customer.id, TimelineEntry.kind == "tag")
            .order_by(TimelineEntry.id)
        )
    )


def _tag_names(db_session: Session, customer: Customer) -> list[str]:
    db_session.refresh(customer)
    return sorted(t.name for t in customer.tags)


def test_add_and_remove_one(db_session: Session) -> None:
    c = make_customer(db_session)
    assert tags.add_tag(db_session=db_session, customer_id=c.id, tag_name=" vip ") is True
    assert tags.add_tag(db_session=db_session, customer_id=c.id, tag_name="vip") is False
    assert _tag_names(db_session, c) == ["vip"]
    assert tags.remove_tag(db_session=db_session, customer_id=c.id, tag_name="vip") is True
    assert tags.remove_tag(db_session=db_session, customer_id=c.id, tag_name="vip") is False
    assert _tag_names(db_session, c) == []
    assert _titles(db_session, c) == ["Tagged vip", "Untagged vip"]
    entry = db_session.scalars(
        select(TimelineEntry).where(TimelineEntry.customer_id == c.id)
    ).first()
    assert entry.detail == {"tag": "vip", "action": "added"}
    with pytest.raises(NotFound, match="no customer"):
        tags.add_tag(db_session=db_session, customer_id=987_654, tag_name="vip")
    with pytest.raises(NotFound, match="no tag named 'gold'"):
        tags.remove_tag(db_session=db_session, customer_id=c.id, tag_name="gold")
    with pytest.raises(InvalidInput, match="cannot be empty"):
        tags.add_tag(db_session=db_session, customer_id=c.id, tag_name="  ")
    with pytest.raises(InvalidInput, match="81 characters"):
        tags.add_tag(db_session=db_session, customer_id=c.id, tag_name="x" * 81)


def test_bulk_add_and_remove(db_session: Session) -> None:
    people = [make_customer(db_session, external_id=f"b{i}") for i in range(4)]
    tags.add_tag(db_session=db_session, customer_id=people[0].id, tag_name="q3")
    ids = [p.id for p in people[:3]]
    assert tags.bulk_add(db_session=db_session, customer_ids=ids, tag_name="q3") == 2
    assert tags.bulk_add(db_session=db_session, customer_ids=ids, tag_name="q3") == 0
    counts = {tc.tag.name: tc.customers for tc in tags.list_tags(db_session=db_session)}
    assert counts == {"q3": 3}
    assert _titles(db_session, people[1]) == ["Tagged q3"]
    assert _titles(db_session, people[0]) == ["Tagged q3"]  # not twice
    removed = tags.bulk_remove(
        db_session=db_session, customer_ids=[people[1].id, people[3].id], tag_name="q3"
    )
    assert removed == 1
    assert _tag_names(db_session, people[1]) == []
    assert _titles(db_session, people[3]) == []
    with pytest.raises(NotFound, match="1 customer id"):
        tags.bulk_add(db_session=db_session, customer_ids=[people[3].id, 999_999], tag_name="q3")
    assert _tag_names(db_session, people[3]) == []  # nothing changed


def test_bulk_by_external_ids_and_segment(db_session: Session) -> None:
    a = make_customer(db_session, external_id="x-a", industry="travel")
    b = make_customer(db_session, external_id="x-b", industry="travel")
    c = make_customer(db_session, external_id="x-c", industry="retail")
    ids = tags.ids_for_external_ids(db_session=db_session, external_ids=["x-c", "x-a", "x-c"])
    assert ids == [c.id, a.id]
    with pytest.raises(NotFound, match="1 customer\\(s\\) not found: nope"):
        tags.ids_for_external_ids(db_session=db_session, external_ids=["x-a", "nope"])
    seg = service.create_segment(db_session=db_session, name="T", filter_text='industry = "travel"')
    members = service.member_ids(db_session=db_session, segment=seg)
    assert tags.bulk_add(db_session=db_session, customer_ids=members, tag_name="crisis") == 2
    assert [_tag_names(db_session, x) for x in (a, b, c)] == [["crisis"], ["crisis"], []]


def test_create_rename_delete(db_session: Session) -> None:
    a = make_customer(db_session)
    b = make_customer(db_session)
    tags.create_tag(db_session=db_session, name="gold", color="#ffd700")
    with pytest.raises(AlreadyExists):
        tags.create_tag(db_session=db_session, name="gold")
    tags.bulk_add(db_session=db_session, customer_ids=[a.id, b.id], tag_name="gold")
    tags.create_tag(db_session=db_session, name="silver")
    with pytest.raises(AlreadyExists):
        tags.rename_tag(db_session=db_session, name="gold", new_name="silver")
    tags.rename_tag(db_session=db_session, name="gold", new_name="platinum")
    assert _tag_names(db_session, a) == ["platinum"]
    assert tags.delete_tag(db_session=db_session, name="platinum") == 2
    assert _tag_names(db_session, b) == []
    assert _titles(db_session, b) == [
        "Tagged gold",
        "Tag gold renamed to platinum",
        "Untagged platinum (tag deleted)",
    ]
    assert sorted(db_session.scalars(select(Tag.name))) == ["silver"]
    with pytest.raises(NotFound):
        tags.delete_tag(db_session=db_session, name="platinum")
