"""Request and response bodies of the REST API (Pydantic), built from the ORM rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keepwell.customers.models import CustomerStatus
from keepwell.users.models import Role

Name = Field(min_length=1, max_length=255)


class ApiModel(BaseModel):
    """Base of the API's bodies: unknown fields are errors, ORM rows are read by attribute."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")


class CustomerCreate(ApiModel):
    external_id: str = Field(min_length=1, max_length=255)
    name: str = Name
    email: str | None = Field(default=None, max_length=320)
    company: str | None = Field(default=None, max_length=255)
    industry: str | None = Field(default=None, max_length=120)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    time_zone: str = Field(default="UTC", max_length=64)
    signup_at: datetime | None = None
    status: CustomerStatus = CustomerStatus.active
    owner_email: str | None = Field(default=None, max_length=320)
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=100)


class CustomerUpdate(ApiModel):
    """Only the fields sent are changed."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    company: str | None = Field(default=None, max_length=255)
    industry: str | None = Field(default=None, max_length=120)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    time_zone: str | None = Field(default=None, max_length=64)
    status: CustomerStatus | None = None
    owner_email: str | None = Field(default=None, max_length=320)
    attributes: dict[str, Any] | None = None


class ContactIn(ApiModel):
    name: str = Name
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    role: str | None = Field(default=None, max_length=120)
    is_primary: bool = False


class ContactRead(ApiModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    role: str | None
    is_primary: bool


class CustomerRead(ApiModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str
    name: str
    email: str | None
    company: str | None
    industry: str | None
    country: str | None
    time_zone: str
    signup_at: datetime
    status: CustomerStatus
    owner_email: str | None
    tags: list[str]
    attributes: dict[str, Any]
    contacts: list[ContactRead]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, customer) -> CustomerRead:
        return cls(
            id=customer.id,
            external_id=customer.external_id,
            name=customer.name,
            email=customer.email,
            company=customer.company,
            industry=customer.industry,
            country=customer.country,
            time_zone=customer.time_zone,
            signup_at=customer.signup_at,
            status=customer.status,
            owner_email=customer.owner.email if customer.owner else None,
            tags=sorted(t.name for t in customer.tags),
            attributes=customer.attributes or {},
            contacts=[ContactRead.model_validate(c) for c in customer.contacts],
            created_at=customer.created_at,
            updated_at=customer.updated_at,
        )


class CustomerListItem(ApiModel):
    id: int
    external_id: str
    name: str
    company: str | None
    industry: str | None
    status: CustomerStatus
    owner_email: str | None
    tags: list[str]
    plan: str | None
    mrr_minor: int
    currency: str | None
    signup_at: datetime


class Page(ApiModel):
    total: int
    limit: int
    offset: int
    next_offset: int | None


class CustomerPage(Page):
    items: list[CustomerListItem]


class TagRead(ApiModel):
    name: str
    color: str | None
    customers: int


class NoteIn(ApiModel):
    body: str = Field(min_length=1, max_length=100_000)


class NoteRead(ApiModel):
    id: int
    body: str
    author_id: int | None
    created_at: datetime


class TimelineItemRead(ApiModel):
    occurred_at: datetime
    kind: str
    title: str
    detail: dict[str, Any]


class UserRead(ApiModel):
    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    last_login_at: datetime | None


class UserCreate(ApiModel):
    email: str = Field(min_length=3, max_length=320)
    name: str = Name
    role: Role = Role.csm
    password: str | None = Field(default=None, min_length=10, max_length=1024)


class UserUpdate(ApiModel):
    """Only the fields sent are changed; `is_active: false` disables the user."""

    role: Role | None = None
    is_active: bool | None = None


class Me(ApiModel):
    user: UserRead
    scopes: list[str]
    via: str
