"""The field catalogue of the filter language: every name a filter may use, its type and SQL.

Types: ``string``, ``number``, ``money`` (major units, e.g. 100 = $100.00), ``date``, ``enum``
(a fixed set of values), ``tag`` and ``boolean``. ``attributes.<key>`` reads a custom
attribute; its type follows the value it is compared with.

Every expression is correlated to ``customers`` (a column, or a scalar subquery keyed on
``customers.id``), so a compiled filter is one WHERE clause over the customers table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Float, and_, case, cast, exists, func, or_, select
from sqlalchemy.sql.expression import ColumnElement

from keepwell.billing.models import Subscription, SubscriptionStatus
from keepwell.customers.models import Customer, CustomerStatus
from keepwell.health.models import HealthScore
from keepwell.risk.models import RiskScore
from keepwell.segments.models import CustomerStats
from keepwell.surveys.models import SurveyKind, SurveyResponse
from keepwell.users.models import StaffUser

STRING, NUMBER, MONEY, DATE, ENUM, TAG, BOOLEAN = (
    "string",
    "number",
    "money",
    "date",
    "enum",
    "tag",
    "boolean",
)
USAGE_BANDS = ("daily", "weekly", "monthly", "less than monthly")

Expr = Callable[[datetime], ColumnElement[Any]]


@dataclass(frozen=True)
class Field:
    """One filterable field: name, type, what it means, and its SQL (given 'now')."""

    name: str
    type: str
    description: str
    expr: Expr
    values: tuple[str, ...] = ()


@cache
def _currencies_with(digits: int) -> tuple[str, ...]:
    """ISO codes whose minor unit has ``digits`` decimals (0: JPY ..., 3: BHD ...), from CLDR."""
    from babel.numbers import get_currency_precision, list_currencies

    return tuple(sorted(c for c in list_currencies() if get_currency_precision(c) == digits))


def _paying(now: datetime) -> ColumnElement[bool]:
    return and_(
        Subscription.customer_id == Customer.id,
        Subscription.started_at <= now,
        or_(Subscription.ended_at.is_(None), Subscription.ended_at > now),
        Subscription.status != SubscriptionStatus.trialing,
        Subscription.mrr_minor > 0,
    )


def _mrr(now: datetime) -> ColumnElement[Any]:
    scale = case(
        (Subscription.currency.in_(_currencies_with(0)), 1.0),
        (Subscription.currency.in_(_currencies_with(3)), 1000.0),
        else_=100.0,
    )
    major = cast(Subscription.mrr_minor, Float) / cast(scale, Float)
    total = select(func.sum(major)).where(_paying(now)).scalar_subquery()
    return func.coalesce(total, 0.0)


def _paying_now(now: datetime) -> ColumnElement[Any]:
    return exists().where(_paying(now))


def _ever_paid(now: datetime) -> ColumnElement[Any]:
    return exists().where(
        Subscription.customer_id == Customer.id,
        Subscription.started_at <= now,
        Subscription.status != SubscriptionStatus.trialing,
        Subscription.mrr_minor > 0,
    )


def _latest(column, model, order) -> Expr:
    def build(now: datetime) -> ColumnElement[Any]:
        return (
            select(column)
            .where(model.customer_id == Customer.id)
            .order_by(order.desc(), model.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    return build


def _latest_nps(now: datetime) -> ColumnElement[Any]:
    return (
        select(SurveyResponse.score)
        .where(SurveyResponse.customer_id == Customer.id, SurveyResponse.kind == SurveyKind.nps)
        .order_by(SurveyResponse.responded_at.desc(), SurveyResponse.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _owner(now: datetime) -> ColumnElement[Any]:
    return select(StaffUser.email).where(StaffUser.id == Customer.owner_id).scalar_subquery()


def _stat(column) -> Expr:
    def build(now: datetime) -> ColumnElement[Any]:
        return select(column).where(CustomerStats.customer_id == Customer.id).scalar_subquery()

    return build


def _column(column) -> Expr:
    return lambda now: column


def _tag_marker(now: datetime) -> ColumnElement[Any]:  # tags compile specially (EXISTS)
    raise NotImplementedError


_FIELDS = [
    Field("name", STRING, "Customer name.", _column(Customer.name)),
    Field("external_id", STRING, "Id in the system of record.", _column(Customer.external_id)),
    Field("email", STRING, "Customer e-mail address.", _column(Customer.email)),
    Field("company", STRING, "Company name.", _column(Customer.company)),
    Field("industry", STRING, "Industry.", _column(Customer.industry)),
    Field("country", STRING, "ISO country code (DE, US ...).", _column(Customer.country)),
    Field("time_zone", STRING, "IANA time zone.", _column(Customer.time_zone)),
    Field("owner", STRING, "E-mail of the customer's owner (CSM).", _owner),
    Field(
        "status",
        ENUM,
        "Commercial status.",
        _column(Customer.status),
        tuple(s.value for s in CustomerStatus),
    ),
    Field("signup_at", DATE, "When the customer signed up.", _column(Customer.signup_at)),
    Field("created_at", DATE, "When keepwell first stored it.", _column(Customer.created_at)),
    Field("tag", TAG, "A tag the customer carries.", _tag_marker),
    Field(
        "mrr",
        MONEY,
        "Current MRR in major units (paying subscriptions in force now; 0 when none).",
        _mrr,
    ),
    Field("paying", BOOLEAN, "Has a paying subscription in force now.", _paying_now),
    Field("ever_paid", BOOLEAN, "Has ever had a paying subscription.", _ever_paid),
    Field(
        "risk",
        NUMBER,
        "Churn probability (0-1) of the latest risk score.",
        _latest(RiskScore.probability, RiskScore, RiskScore.scored_at),
    ),
    Field(
        "risk_band",
        ENUM,
        "Band of the latest risk score.",
        _latest(RiskScore.band, RiskScore, RiskScore.scored_at),
        ("high", "medium", "low"),
    ),
    Field(
        "health",
        NUMBER,
        "Latest health score (0-100).",
        _latest(HealthScore.score, HealthScore, HealthScore.scored_at),
    ),
    Field(
        "health_band",
        ENUM,
        "Band of the latest health score.",
        _latest(HealthScore.band, HealthScore, HealthScore.scored_at),
        ("red", "yellow", "green"),
    ),
    Field("nps", NUMBER, "Score (0-10) of the latest NPS answer.", _latest_nps),
    Field(
        "usage_band",
        ENUM,
        "Usage frequency over the last 28 days (customer stats; null: no event ever).",
        _stat(CustomerStats.usage_band),
        USAGE_BANDS,
    ),
    Field(
        "active_days_28d",
        NUMBER,
        "Active days in the last 28 days (customer stats).",
        _stat(CustomerStats.active_days_28d),
    ),
    Field(
        "events_28d",
        NUMBER,
        "Events in the last 28 days (customer stats).",
        _stat(CustomerStats.events_28d),
    ),
    Field(
        "days_since_last_event",
        NUMBER,
        "Whole days since the latest event (customer stats; null: no event ever).",
        _stat(CustomerStats.days_since_last_event),
    ),
    Field(
        "last_event_at",
        DATE,
        "When the latest event happened (customer stats).",
        _stat(CustomerStats.last_event_at),
    ),
]

FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}
ATTRIBUTE_PREFIX = "attributes."

NON_NULL_COLUMNS = {"name", "external_id", "time_zone", "status", "signup_at", "created_at"}
"""Fields that are never null (the others are guarded so a comparison is never NULL)."""


def catalogue() -> list[Field]:
    """Every field, in catalogue order (for ``keepwell segments fields`` and the docs)."""
    return list(_FIELDS)
