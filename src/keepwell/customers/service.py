"""Customer service: look up, list and search customers. The only place with customer logic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from keepwell.billing import service as billing_service
from keepwell.customers.models import Customer, CustomerStatus, Tag, customer_tags
from keepwell.errors import InvalidInput, NotFound
from keepwell.models import row_id, utcnow
from keepwell.users.models import StaffUser

SORTABLE = {
    "name": Customer.name,
    "signup_at": Customer.signup_at,
    "external_id": Customer.external_id,
    "industry": Customer.industry,
}


@dataclass(frozen=True)
class CustomerFilter:
    """Which customers to list. Every field is optional; all given ones must match.

    ``search`` matches a substring (case-insensitive) of name, company, e-mail or external id.
    """

    search: str | None = None
    industry: str | None = None
    status: CustomerStatus | None = None
    owner_email: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class CustomerRow:
    """One line of a customer list: the customer plus current plan and MRR."""

    customer: Customer
    plan: str | None
    mrr_minor: int
    currency: str | None


@dataclass(frozen=True)
class CustomerPage:
    """A page of customers and the total number matching the filter."""

    rows: list[CustomerRow]
    total: int
    limit: int
    offset: int


def get(*, db_session: Session, customer_id: int) -> Customer | None:
    """The customer with this internal id, or None."""
    return db_session.get(Customer, customer_id)


def get_by_external_id(*, db_session: Session, external_id: str) -> Customer | None:
    """The customer with this external id, or None."""
    return db_session.scalars(select(Customer).where(Customer.external_id == external_id)).first()


def get_or_raise(*, db_session: Session, ref: str) -> Customer:
    """The customer named by ``ref``: an external id, or ``#<internal id>``.

    Raises :class:`NotFound` with a hint when there is none.
    """
    customer: Customer | None
    if ref.startswith("#") and (found_id := row_id(ref)) is not None:
        customer = get(db_session=db_session, customer_id=found_id)
    else:
        customer = get_by_external_id(db_session=db_session, external_id=ref)
    if customer is None:
        raise NotFound(
            f"no customer {ref!r}",
            hint="use the external id shown by `keepwell customers list` (or #<internal id>)",
        )
    return customer


def _filtered(query: Select, flt: CustomerFilter) -> Select:
    if flt.search:
        needle = flt.search.strip().lower()  # matched literally: LIKE wildcards escaped
        query = query.where(
            or_(
                func.lower(Customer.name).contains(needle, autoescape=True),
                func.lower(Customer.company).contains(needle, autoescape=True),
                func.lower(Customer.email).contains(needle, autoescape=True),
                func.lower(Customer.external_id).contains(needle, autoescape=True),
            )
        )
    if flt.industry:
        query = query.where(func.lower(Customer.industry) == flt.industry.lower())
    if flt.status:
        query = query.where(Customer.status == flt.status)
    if flt.owner_email:
        query = query.join(StaffUser, Customer.owner_id == StaffUser.id).where(
            func.lower(StaffUser.email) == flt.owner_email.lower()
        )
    if flt.tag:
        query = query.where(
            Customer.id.in_(
                select(customer_tags.c.customer_id)
                .join(Tag, Tag.id == customer_tags.c.tag_id)
                .where(Tag.name == flt.tag)
            )
        )
    return query


def get_all(
    *,
    db_session: Session,
    flt: CustomerFilter | None = None,
    sort: str = "name",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
    at: datetime | None = None,
) -> CustomerPage:
    """A page of customers matching ``flt``, each with its plan and MRR at ``at`` (default now)."""
    if sort not in SORTABLE:
        raise InvalidInput(f"cannot sort by {sort!r}", field="sort", expected=", ".join(SORTABLE))
    if limit < 1 or offset < 0:
        raise InvalidInput("limit must be >= 1 and offset >= 0", field="limit")
    flt = flt or CustomerFilter()
    total = db_session.scalar(_filtered(select(func.count(Customer.id)), flt)) or 0
    order = SORTABLE[sort].desc() if descending else SORTABLE[sort].asc()
    customers = list(
        db_session.scalars(
            _filtered(select(Customer), flt)
            .order_by(order, Customer.id)
            .limit(limit)
            .offset(offset)
        )
    )
    current = billing_service.current_subscriptions(
        db_session=db_session, customer_ids=[c.id for c in customers], at=at or utcnow()
    )
    rows = []
    for c in customers:
        subs = current.get(c.id, [])
        rows.append(
            CustomerRow(
                customer=c,
                plan=", ".join(s.plan for s in subs) or None,
                mrr_minor=sum(s.mrr_minor for s in subs),
                currency=subs[0].currency if subs else None,
            )
        )
    return CustomerPage(rows=rows, total=total, limit=limit, offset=offset)


@dataclass(frozen=True)
class CustomerOverview:
    """What ``customers show`` displays: the customer, money side and recent timeline."""

    customer: Customer
    subscriptions: list
    current_mrr_minor: int
    currency: str | None
    invoices: list
    timeline: list


def overview(
    *, db_session: Session, ref: str, at: datetime | None = None, timeline_limit: int = 20
) -> CustomerOverview:
    """Everything needed to show one customer (raises :class:`NotFound`)."""
    from keepwell.timeline import service as timeline_service

    customer = get_or_raise(db_session=db_session, ref=ref)
    at = at or utcnow()
    subs = billing_service.subscriptions_of(db_session=db_session, customer_id=customer.id)
    current = [s for s in subs if s.started_at <= at and (s.ended_at is None or s.ended_at > at)]
    return CustomerOverview(
        customer=customer,
        subscriptions=subs,
        current_mrr_minor=sum(s.mrr_minor for s in current),
        currency=current[0].currency if current else (subs[-1].currency if subs else None),
        invoices=billing_service.invoices_of(db_session=db_session, customer_id=customer.id),
        timeline=timeline_service.for_customer(
            db_session=db_session, customer_id=customer.id, limit=timeline_limit
        ),
    )
