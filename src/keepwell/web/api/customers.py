"""`/v1/customers`: list (filter, sort, paginate), read, create, update; contacts, tags, notes,
timeline and health history of one customer; `/v1/tags`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from keepwell.customers import service as customer_service
from keepwell.customers.models import CustomerStatus
from keepwell.timeline import service as timeline_service
from keepwell.web import customer_edits as edits
from keepwell.web.auth import DbSession, Reader, Writer
from keepwell.web.schemas import (
    ContactIn,
    ContactRead,
    CustomerCreate,
    CustomerListItem,
    CustomerPage,
    CustomerRead,
    CustomerUpdate,
    NoteIn,
    NoteRead,
    TagRead,
    TimelineItemRead,
)

router = APIRouter(tags=["customers"])

ExternalId = Annotated[
    str, Path(min_length=1, max_length=255, description="The customer's external id.")
]


@router.get("/customers", response_model=CustomerPage, summary="List customers")
def list_customers(
    db_session: DbSession,
    _: Reader,
    search: Annotated[
        str | None, Query(max_length=200, description="Name/company/e-mail/id contains.")
    ] = None,
    industry: Annotated[str | None, Query(max_length=120)] = None,
    status_: Annotated[CustomerStatus | None, Query(alias="status")] = None,
    owner: Annotated[str | None, Query(max_length=320, description="Owner's e-mail.")] = None,
    tag: Annotated[str | None, Query(max_length=80)] = None,
    sort: Literal["name", "signup_at", "external_id", "industry"] = "name",
    order: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> CustomerPage:
    """Customers with their current plan and MRR; ``total`` counts every match."""
    page = customer_service.get_all(
        db_session=db_session,
        flt=customer_service.CustomerFilter(
            search=search, industry=industry, status=status_, owner_email=owner, tag=tag
        ),
        sort=sort,
        descending=order == "desc",
        limit=limit,
        offset=offset,
    )
    items = [
        CustomerListItem(
            id=r.customer.id,
            external_id=r.customer.external_id,
            name=r.customer.name,
            company=r.customer.company,
            industry=r.customer.industry,
            status=r.customer.status,
            owner_email=r.customer.owner.email if r.customer.owner else None,
            tags=sorted(t.name for t in r.customer.tags),
            plan=r.plan,
            mrr_minor=r.mrr_minor,
            currency=r.currency,
            signup_at=r.customer.signup_at,
        )
        for r in page.rows
    ]
    shown = page.offset + len(items)
    return CustomerPage(
        items=items,
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        next_offset=shown if shown < page.total else None,
    )


@router.post(
    "/customers",
    response_model=CustomerRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a customer",
)
def create_customer(body: CustomerCreate, db_session: DbSession, who: Writer) -> CustomerRead:
    customer = edits.create_customer(
        db_session=db_session, actor_id=who.user.id, **body.model_dump()
    )
    return CustomerRead.of(customer)


@router.get("/customers/{external_id}", response_model=CustomerRead, summary="Get a customer")
def get_customer(external_id: ExternalId, db_session: DbSession, _: Reader) -> CustomerRead:
    return CustomerRead.of(
        edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    )


@router.patch("/customers/{external_id}", response_model=CustomerRead, summary="Update a customer")
def update_customer(
    external_id: ExternalId, body: CustomerUpdate, db_session: DbSession, who: Writer
) -> CustomerRead:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    edits.update_customer(
        db_session=db_session,
        customer=customer,
        changes=body.model_dump(exclude_unset=True),
        actor_id=who.user.id,
    )
    return CustomerRead.of(customer)


@router.get(
    "/customers/{external_id}/contacts",
    response_model=list[ContactRead],
    summary="List a customer's contacts",
)
def list_contacts(external_id: ExternalId, db_session: DbSession, _: Reader) -> list[ContactRead]:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    return [ContactRead.model_validate(c) for c in customer.contacts]


@router.post(
    "/customers/{external_id}/contacts",
    response_model=ContactRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a contact",
)
def add_contact(
    external_id: ExternalId, body: ContactIn, db_session: DbSession, who: Writer
) -> ContactRead:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    contact = edits.add_contact(
        db_session=db_session, customer=customer, actor_id=who.user.id, **body.model_dump()
    )
    return ContactRead.model_validate(contact)


@router.delete(
    "/customers/{external_id}/contacts/{contact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a contact",
)
def delete_contact(
    external_id: ExternalId,
    contact_id: Annotated[int, Path(ge=1, le=2**62)],
    db_session: DbSession,
    who: Writer,
) -> Response:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    edits.delete_contact(
        db_session=db_session, customer=customer, contact_id=contact_id, actor_id=who.user.id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/tags", response_model=list[TagRead], tags=["tags"], summary="List tags")
def list_tags(db_session: DbSession, _: Reader) -> list[TagRead]:
    return [
        TagRead(name=tag.name, color=tag.color, customers=n)
        for tag, n in edits.list_tags(db_session=db_session)
    ]


TagName = Annotated[str, Path(min_length=1, max_length=80)]


@router.put(
    "/customers/{external_id}/tags/{tag}",
    response_model=CustomerRead,
    tags=["tags"],
    summary="Tag a customer",
)
def add_tag(
    external_id: ExternalId, tag: TagName, db_session: DbSession, who: Writer
) -> CustomerRead:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    edits.add_tag(db_session=db_session, customer=customer, name=tag, actor_id=who.user.id)
    return CustomerRead.of(customer)


@router.delete(
    "/customers/{external_id}/tags/{tag}",
    response_model=CustomerRead,
    tags=["tags"],
    summary="Untag a customer",
)
def remove_tag(
    external_id: ExternalId, tag: TagName, db_session: DbSession, who: Writer
) -> CustomerRead:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    edits.remove_tag(db_session=db_session, customer=customer, name=tag, actor_id=who.user.id)
    return CustomerRead.of(customer)


@router.get(
    "/customers/{external_id}/notes",
    response_model=list[NoteRead],
    tags=["notes"],
    summary="List a customer's notes",
)
def list_notes(
    external_id: ExternalId,
    db_session: DbSession,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[NoteRead]:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    notes = edits.list_notes(db_session=db_session, customer=customer, limit=limit)
    return [NoteRead.model_validate(n) for n in notes]


@router.post(
    "/customers/{external_id}/notes",
    response_model=NoteRead,
    status_code=status.HTTP_201_CREATED,
    tags=["notes"],
    summary="Write a note",
)
def add_note(external_id: ExternalId, body: NoteIn, db_session: DbSession, who: Writer) -> NoteRead:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    note = edits.add_note(
        db_session=db_session, customer=customer, body=body.body, author_id=who.user.id
    )
    return NoteRead.model_validate(note)


@router.get(
    "/customers/{external_id}/timeline",
    response_model=list[TimelineItemRead],
    summary="A customer's timeline, newest first",
)
def timeline(
    external_id: ExternalId,
    db_session: DbSession,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[TimelineItemRead]:
    customer = edits.get_customer_or_raise(db_session=db_session, external_id=external_id)
    items = timeline_service.for_customer(
        db_session=db_session, customer_id=customer.id, limit=limit
    )
    return [
        TimelineItemRead(
            occurred_at=i.occurred_at, kind=i.kind, title=i.title, detail=dict(i.detail or {})
        )
        for i in items
    ]
