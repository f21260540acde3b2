"""Changing customer records from the API and the web app: create, update, contacts, tags, notes.

Service functions in the house style (keyword-only, ``db_session`` first, flush, the caller
commits); each change is recorded on the customer's timeline with the acting staff user.

These belong beside :mod:`keepwell.customers.service` (which reads customers); they live here
until the customers domain takes them over, and can move there unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from keepwell.customers import notes as notes_service
from keepwell.customers.models import Contact, Customer, CustomerStatus, Note, Tag, customer_tags
from keepwell.customers.service import get_by_external_id
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.models import utcnow
from keepwell.timeline import service as timeline_service
from keepwell.users import service as users_service

__all__ = [
    "EDITABLE",
    "add_contact",
    "add_note",
    "add_tag",
    "create_customer",
    "delete_contact",
    "get_customer_or_raise",
    "list_notes",
    "list_tags",
    "remove_tag",
    "update_customer",
]

EDITABLE = (
    "name",
    "email",
    "company",
    "industry",
    "country",
    "time_zone",
    "status",
    "owner_email",
    "attributes",
)
"""Fields :func:`update_customer` may change (``external_id`` and ``signup_at`` are fixed)."""


def get_customer_or_raise(*, db_session: Session, external_id: str) -> Customer:
    """The customer with this external id; :class:`NotFound` otherwise."""
    customer = get_by_external_id(db_session=db_session, external_id=external_id)
    if customer is None:
        raise NotFound(f"no customer with external id {external_id!r}")
    return customer


LIMITS = {
    "external_id": 255,
    "name": 255,
    "email": 320,
    "company": 255,
    "industry": 120,
    "phone": 64,
    "role": 120,
}
"""Longest text each field holds (the columns' sizes)."""


def _text(value: str | None, field: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidInput("is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"expected text, got {type(value).__name__}", field=field)
    if required and not value.strip():
        raise InvalidInput("must not be empty", field=field)
    if len(value) > LIMITS[field]:
        raise InvalidInput(
            f"{len(value)} characters", field=field, expected=f"at most {LIMITS[field]}"
        )
    return value


def _check_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {zone!r}", field="time_zone", expected="an IANA zone"
        ) from None
    return zone


def _check_country(country: str | None) -> str | None:
    if country is None:
        return None
    country = country.strip().upper()
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        raise InvalidInput(
            f"bad country {country!r}", field="country", expected="ISO 3166 alpha-2, e.g. DE"
        )
    return country


def _utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(
            "time has no zone", field=field, expected="ISO 8601 with an offset, e.g. ...Z"
        )
    return value.astimezone(UTC)


def _owner_id(db_session: Session, owner_email: str | None) -> int | None:
    if owner_email is None:
        return None
    user = users_service.get_by_email(db_session=db_session, email=owner_email)
    if user is None:
        raise InvalidInput(
            f"no staff user {owner_email!r}", field="owner_email", expected="a staff e-mail"
        )
    return user.id


def create_customer(
    *,
    db_session: Session,
    external_id: str,
    name: str,
    email: str | None = None,
    company: str | None = None,
    industry: str | None = None,
    country: str | None = None,
    time_zone: str = "UTC",
    signup_at: datetime | None = None,
    status: CustomerStatus = CustomerStatus.active,
    owner_email: str | None = None,
    attributes: dict[str, Any] | None = None,
    tags: list[str] | tuple[str, ...] = (),
    actor_id: int | None = None,
) -> Customer:
    """Create a customer (raises :class:`AlreadyExists` when ``external_id`` is taken)."""
    external_id = _text(external_id, "external_id", required=True)
    name = _text(name, "name", required=True)
    email, company = _text(email, "email"), _text(company, "company")
    industry = _text(industry, "industry")
    if get_by_external_id(db_session=db_session, external_id=external_id) is not None:
        raise AlreadyExists(f"a customer with external id {external_id!r} exists already")
    customer = Customer(
        external_id=external_id,
        name=name,
        email=email,
        company=company,
        industry=industry,
        country=_check_country(country),
        time_zone=_check_zone(time_zone),
        signup_at=_utc(signup_at, "signup_at") if signup_at else utcnow(),
        status=status,
        owner_id=_owner_id(db_session, owner_email),
        attributes=dict(attributes or {}),
    )
    db_session.add(customer)
    db_session.flush()
    timeline_service.record(
        db_session=db_session,
        customer_id=customer.id,
        kind="customer.created",
        title="Customer created",
        actor_id=actor_id,
    )
    for tag in tags:
        add_tag(db_session=db_session, customer=customer, name=tag, actor_id=actor_id)
    return customer


def update_customer(
    *,
    db_session: Session,
    customer: Customer,
    changes: dict[str, Any],
    actor_id: int | None = None,
) -> Customer:
    """Apply ``changes`` (a subset of :data:`EDITABLE`); records which fields changed."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(
            f"cannot change {sorted(unknown)}", field=sorted(unknown)[0], expected=str(EDITABLE)
        )
    changed = []
    for field, value in changes.items():
        if field in ("name", "status", "time_zone", "attributes") and value is None:
            raise InvalidInput("must not be null", field=field)
        if field == "owner_email":
            owner_id = _owner_id(db_session, value)
            if owner_id != customer.owner_id:
                customer.owner_id = owner_id
                changed.append(field)
            continue
        if field in LIMITS:
            value = _text(value, field, required=field == "name")
        if field == "country":
            value = _check_country(value)
        elif field == "time_zone":
            value = _check_zone(value)
        elif field == "attributes":
            value = dict(value)
        if getattr(customer, field) != value:
            setattr(customer, field, value)
            changed.append(field)
    if changed:
        db_session.flush()
        db_session.expire(customer, ["owner"])
        timeline_service.record(
            db_session=db_session,
            customer_id=customer.id,
            kind="customer.updated",
            title="Customer updated: " + ", ".join(changed),
            detail={"fields": changed},
            actor_id=actor_id,
        )
    return customer


def add_contact(
    *,
    db_session: Session,
    customer: Customer,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    role: str | None = None,
    is_primary: bool = False,
    actor_id: int | None = None,
) -> Contact:
    """Add a person to a customer account (a new primary contact demotes the old one)."""
    name = _text(name, "name", required=True)
    email, phone, role = _text(email, "email"), _text(phone, "phone"), _text(role, "role")
    if is_primary:
        for other in customer.contacts:
            other.is_primary = False
    contact = Contact(
        customer_id=customer.id,
        name=name,
        email=email,
        phone=phone,
        role=role,
        is_primary=is_primary,
    )
    db_session.add(contact)
    db_session.flush()
    db_session.expire(customer, ["contacts"])
    timeline_service.record(
        db_session=db_session,
        customer_id=customer.id,
        kind="contact.added",
        title=f"Contact added: {name}",
        actor_id=actor_id,
    )
    return contact


def delete_contact(
    *, db_session: Session, customer: Customer, contact_id: int, actor_id: int | None = None
) -> None:
    """Remove a contact of this customer (:class:`NotFound` if it is not theirs)."""
    contact = db_session.get(Contact, contact_id)
    if contact is None or contact.customer_id != customer.id:
        raise NotFound(f"customer {customer.external_id!r} has no contact {contact_id}")
    db_session.delete(contact)
    db_session.flush()
    db_session.expire(customer, ["contacts"])
    timeline_service.record(
        db_session=db_session,
        customer_id=customer.id,
        kind="contact.removed",
        title=f"Contact removed: {contact.name}",
        actor_id=actor_id,
    )


def list_tags(*, db_session: Session) -> list[tuple[Tag, int]]:
    """Every tag with the number of customers carrying it, by name."""
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
    return [(tag, int(n)) for tag, n in rows]


def _tag_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise InvalidInput("tag name must have 1 to 80 characters", field="tag")
    return name


def add_tag(
    *, db_session: Session, customer: Customer, name: str, actor_id: int | None = None
) -> Tag:
    """Tag a customer (the tag is created if new; tagging twice changes nothing)."""
    name = _tag_name(name)
    tag = db_session.scalars(select(Tag).where(Tag.name == name)).first()
    if tag is None:
        tag = Tag(name=name)
        db_session.add(tag)
        db_session.flush()
    has = db_session.scalar(
        select(func.count())
        .select_from(customer_tags)
        .where(customer_tags.c.customer_id == customer.id, customer_tags.c.tag_id == tag.id)
    )
    if not has:
        db_session.execute(
            insert(customer_tags).values(
                customer_id=customer.id, tag_id=tag.id, created_at=utcnow()
            )
        )
        db_session.expire(customer, ["tags"])
        timeline_service.record(
            db_session=db_session,
            customer_id=customer.id,
            kind="tag.added",
            title=f"Tagged {name}",
            actor_id=actor_id,
        )
    return tag


def remove_tag(
    *, db_session: Session, customer: Customer, name: str, actor_id: int | None = None
) -> bool:
    """Untag a customer; returns whether the customer had the tag."""
    name = _tag_name(name)
    tag = db_session.scalars(select(Tag).where(Tag.name == name)).first()
    if tag is None:
        return False
    result = db_session.execute(
        delete(customer_tags).where(
            customer_tags.c.customer_id == customer.id, customer_tags.c.tag_id == tag.id
        )
    )
    if not result.rowcount:
        return False
    db_session.expire(customer, ["tags"])
    timeline_service.record(
        db_session=db_session,
        customer_id=customer.id,
        kind="tag.removed",
        title=f"Untagged {name}",
        actor_id=actor_id,
    )
    return True


def add_note(
    *, db_session: Session, customer: Customer, body: str, author_id: int | None = None
) -> Note:
    """Write a note on a customer through the notes service (its checks and timeline apply)."""
    return notes_service.add_note(
        db_session=db_session, customer_id=customer.id, body=body, author_id=author_id
    )


def list_notes(*, db_session: Session, customer: Customer, limit: int = 50) -> list[Note]:
    """A customer's notes, newest first."""
    return list(
        db_session.scalars(
            select(Note)
            .where(Note.customer_id == customer.id)
            .order_by(Note.created_at.desc(), Note.id.desc())
            .limit(limit)
        )
    )
