"""Tags: create, rename and delete them; put them on customers one at a time or in bulk.

Every change to a customer's tags is recorded on its timeline (kind ``tag``). Bulk changes are
set-based (a few statements whatever the number of customers). Services flush; callers commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer, Tag, customer_tags
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.models import utcnow
from keepwell.timeline.models import TimelineEntry

MAX_NAME = 80
TIMELINE_KIND = "tag"
_BATCH = 10_000


@dataclass(frozen=True)
class TagCount:
    """A tag and how many customers carry it."""

    tag: Tag
    customers: int


def _clean(name: str) -> str:
    text = (name or "").strip()
    if not text:
        raise InvalidInput("a tag name cannot be empty", field="tag")
    if len(text) > MAX_NAME:
        raise InvalidInput(
            f"tag name is {len(text)} characters long", field="tag", expected=f"<= {MAX_NAME}"
        )
    return text


def find_tag(*, db_session: Session, name: str) -> Tag | None:
    """The tag with exactly this name, or None."""
    return db_session.scalars(select(Tag).where(Tag.name == _clean(name))).first()


def get_tag(*, db_session: Session, name: str) -> Tag:
    """The tag with this name; raises :class:`NotFound`."""
    tag = find_tag(db_session=db_session, name=name)
    if tag is None:
        raise NotFound(f"no tag named {name.strip()!r}", hint="`keepwell tags list` shows them")
    return tag


def list_tags(*, db_session: Session) -> list[TagCount]:
    """Every tag with its number of customers, by name."""
    counts = (
        select(customer_tags.c.tag_id, func.count().label("n"))
        .group_by(customer_tags.c.tag_id)
        .subquery()
    )
    rows = db_session.execute(
        select(Tag, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.tag_id == Tag.id)
        .order_by(Tag.name)
    )
    return [TagCount(tag, int(n)) for tag, n in rows]


def create_tag(*, db_session: Session, name: str, color: str | None = None) -> Tag:
    """Create a tag; raises :class:`AlreadyExists` when the name is taken."""
    clean = _clean(name)
    if find_tag(db_session=db_session, name=clean) is not None:
        raise AlreadyExists(f"a tag named {clean!r} already exists")
    if color is not None and len(color) > 16:
        raise InvalidInput("color is too long", field="color", expected="<= 16 characters")
    tag = Tag(name=clean, color=color)
    db_session.add(tag)
    db_session.flush()
    return tag


def _ensure_tag(db_session: Session, name: str) -> Tag:
    return find_tag(db_session=db_session, name=name) or create_tag(
        db_session=db_session, name=name
    )


def _tagged_ids(tag: Tag) -> Select:
    return select(customer_tags.c.customer_id).where(customer_tags.c.tag_id == tag.id)


def _record(
    db_session: Session, customer_ids: Sequence[int], title: str, detail: dict, actor_id: int | None
) -> None:
    """One timeline entry per customer, inserted in batches (no per-customer ORM objects)."""
    now = utcnow()
    for start in range(0, len(customer_ids), _BATCH):
        rows = [
            {
                "customer_id": cid,
                "occurred_at": now,
                "kind": TIMELINE_KIND,
                "title": title,
                "detail": detail,
                "actor_id": actor_id,
            }
            for cid in customer_ids[start : start + _BATCH]
        ]
        db_session.execute(insert(TimelineEntry), rows)


def rename_tag(
    *, db_session: Session, name: str, new_name: str, actor_id: int | None = None
) -> Tag:
    """Rename a tag (its customers keep it); recorded on each tagged customer's timeline."""
    tag = get_tag(db_session=db_session, name=name)
    clean = _clean(new_name)
    if clean == tag.name:
        return tag
    if find_tag(db_session=db_session, name=clean) is not None:
        raise AlreadyExists(f"a tag named {clean!r} already exists")
    old = tag.name
    tag.name = clean
    db_session.flush()
    ids = list(db_session.scalars(_tagged_ids(tag)))
    _record(
        db_session,
        ids,
        f"Tag {old} renamed to {clean}",
        {"tag": clean, "previous": old, "action": "renamed"},
        actor_id,
    )
    return tag


def delete_tag(*, db_session: Session, name: str, actor_id: int | None = None) -> int:
    """Delete a tag; it leaves every customer (on their timelines). Returns how many had it."""
    tag = get_tag(db_session=db_session, name=name)
    ids = list(db_session.scalars(_tagged_ids(tag)))
    detail = {"tag": tag.name, "action": "deleted"}
    _record(db_session, ids, f"Untagged {tag.name} (tag deleted)", detail, actor_id)
    db_session.execute(delete(customer_tags).where(customer_tags.c.tag_id == tag.id))
    db_session.delete(tag)
    db_session.flush()
    _expire_tags(db_session, ids)
    return len(ids)


def _require_customer(db_session: Session, customer_id: int) -> None:
    if db_session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer with id {customer_id}")


def add_tag(
    *, db_session: Session, customer_id: int, tag_name: str, actor_id: int | None = None
) -> bool:
    """Tag one customer (the tag is created when new). False when it already had the tag."""
    _require_customer(db_session, customer_id)
    return (
        bulk_add(
            db_session=db_session, customer_ids=[customer_id], tag_name=tag_name, actor_id=actor_id
        )
        == 1
    )


def remove_tag(
    *, db_session: Session, customer_id: int, tag_name: str, actor_id: int | None = None
) -> bool:
    """Untag one customer. False when it did not have the tag; unknown tag -> NotFound."""
    _require_customer(db_session, customer_id)
    get_tag(db_session=db_session, name=tag_name)
    return (
        bulk_remove(
            db_session=db_session, customer_ids=[customer_id], tag_name=tag_name, actor_id=actor_id
        )
        == 1
    )


def _ids(db_session: Session, customer_ids: Iterable[int] | Select) -> list[int]:
    if isinstance(customer_ids, Select):
        return list(db_session.scalars(customer_ids))
    wanted = sorted({int(i) for i in customer_ids})
    found: set[int] = set()
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        found.update(db_session.scalars(select(Customer.id).where(Customer.id.in_(chunk))))
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise NotFound(f"{len(missing)} customer id(s) do not exist: {shown}")
    return wanted


def _expire_tags(db_session: Session, ids: Iterable[int]) -> None:
    wanted = set(ids)
    for obj in list(db_session.identity_map.values()):
        if isinstance(obj, Customer) and obj.id in wanted:
            db_session.expire(obj, ["tags"])


def bulk_add(
    *,
    db_session: Session,
    customer_ids: Iterable[int] | Select,
    tag_name: str,
    actor_id: int | None = None,
) -> int:
    """Tag many customers (ids, or a select of ids); returns how many newly got the tag.

    Unknown ids raise :class:`NotFound` before anything changes; the tag is created when new.
    """
    ids = _ids(db_session, customer_ids)
    tag = _ensure_tag(db_session, tag_name)
    have = set(db_session.scalars(_tagged_ids(tag)))
    new = [i for i in ids if i not in have]
    now = utcnow()
    for start in range(0, len(new), _BATCH):
        db_session.execute(
            insert(customer_tags),
            [
                {"customer_id": cid, "tag_id": tag.id, "created_at": now}
                for cid in new[start : start + _BATCH]
            ],
        )
    _record(db_session, new, f"Tagged {tag.name}", {"tag": tag.name, "action": "added"}, actor_id)
    _expire_tags(db_session, new)
    db_session.flush()
    return len(new)


def bulk_remove(
    *,
    db_session: Session,
    customer_ids: Iterable[int] | Select,
    tag_name: str,
    actor_id: int | None = None,
) -> int:
    """Untag many customers; returns how many had the tag. Unknown tag -> :class:`NotFound`."""
    ids = _ids(db_session, customer_ids)
    tag = get_tag(db_session=db_session, name=tag_name)
    have = set(db_session.scalars(_tagged_ids(tag)))
    gone = [i for i in ids if i in have]
    for start in range(0, len(gone), _BATCH):
        db_session.execute(
            delete(customer_tags).where(
                customer_tags.c.tag_id == tag.id,
                customer_tags.c.customer_id.in_(gone[start : start + _BATCH]),
            )
        )
    _record(
        db_session, gone, f"Untagged {tag.name}", {"tag": tag.name, "action": "removed"}, actor_id
    )
    _expire_tags(db_session, gone)
    db_session.flush()
    return len(gone)


def ids_for_external_ids(*, db_session: Session, external_ids: Iterable[str]) -> list[int]:
    """Internal ids for external ids; raises :class:`NotFound` naming unknown ones (max 10)."""
    wanted = list(dict.fromkeys(e.strip() for e in external_ids if e and e.strip()))
    if not wanted:
        raise InvalidInput("no customer ids given", field="customers")
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        rows = db_session.execute(
            select(Customer.external_id, Customer.id).where(Customer.external_id.in_(chunk))
        )
        found.update((external_id, cid) for external_id, cid in rows)
    missing = [e for e in wanted if e not in found]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise NotFound(f"{len(missing)} customer(s) not found: {shown}")
    return [found[e] for e in wanted]
