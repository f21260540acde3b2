"""Read-only queries the staff pages need beyond the domain services: the customer list with
segment, risk-band and health-band filters, and the latest risk and health per customer.

The filters compose with the same rules as :class:`keepwell.customers.service.CustomerFilter`
(search = case-insensitive substring of name, company, e-mail or external id).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from keepwell.billing import service as billing_service
from keepwell.customers.models import Customer, Tag, customer_tags
from keepwell.errors import InvalidInput
from keepwell.health.models import HealthScore
from keepwell.models import utcnow
from keepwell.risk.models import RiskScore
from keepwell.users.models import StaffUser

RISK_BANDS = ("high", "medium", "low")
HEALTH_BANDS = ("red", "yellow", "green")
SORTS = {
    "name": Customer.name,
    "signup_at": Customer.signup_at,
    "external_id": Customer.external_id,
    "industry": Customer.industry,
}


@dataclass(frozen=True)
class ListFilter:
    """Which customers the list shows; every given field must match."""

    search: str | None = None
    segment_id: int | None = None
    tag: str | None = None
    owner_email: str | None = None
    risk_band: str | None = None
    health_band: str | None = None


@dataclass(frozen=True)
class ListRow:
    customer: Customer
    plan: str | None
    mrr_minor: int
    currency: str | None
    risk_band: str | None
    probability: float | None
    health_band: str | None
    health: float | None


def _latest_risk_run():
    return (
        select(RiskScore.as_of, RiskScore.scored_at)
        .order_by(RiskScore.as_of.desc(), RiskScore.scored_at.desc())
        .limit(1)
        .subquery()
    )


def latest_risk_ids(band: str) -> Select:
    """Customer ids whose score in the latest risk run has ``band``."""
    run = _latest_risk_run()
    return (
        select(RiskScore.customer_id)
        .join(run, and_(run.c.as_of == RiskScore.as_of, run.c.scored_at == RiskScore.scored_at))
        .where(RiskScore.band == band)
    )


def latest_health_ids(band: str) -> Select:
    """Customer ids whose newest health score has ``band``."""
    newer = aliased(HealthScore)
    return select(HealthScore.customer_id).where(
        HealthScore.band == band,
        ~select(newer.id)
        .where(
            newer.customer_id == HealthScore.customer_id,
            or_(
                newer.as_of > HealthScore.as_of,
                and_(newer.as_of == HealthScore.as_of, newer.id > HealthScore.id),
            ),
        )
        .exists(),
    )


def filtered(db_session: Session, query: Select, flt: ListFilter) -> Select:
    """``query`` (over ``customers``) restricted to ``flt``."""
    from keepwell.segments import service as segments_service

    if flt.search and flt.search.strip():
        pattern = f"%{flt.search.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(Customer.name).like(pattern),
                func.lower(Customer.company).like(pattern),
                func.lower(Customer.email).like(pattern),
                func.lower(Customer.external_id).like(pattern),
            )
        )
    if flt.tag:
        query = query.where(
            Customer.id.in_(
                select(customer_tags.c.customer_id)
                .join(Tag, Tag.id == customer_tags.c.tag_id)
                .where(Tag.name == flt.tag)
            )
        )
    if flt.owner_email:
        query = query.where(
            Customer.owner_id.in_(
                select(StaffUser.id).where(
                    func.lower(StaffUser.email) == flt.owner_email.strip().lower()
                )
            )
        )
    if flt.segment_id is not None:
        segment = segments_service.get_segment(db_session=db_session, name_or_id=flt.segment_id)
        ids = segments_service.member_ids(db_session=db_session, segment=segment)
        query = query.where(Customer.id.in_(ids))
    if flt.risk_band:
        if flt.risk_band not in RISK_BANDS:
            raise InvalidInput(
                f"risk band {flt.risk_band!r}", field="risk", expected="high, medium or low"
            )
        query = query.where(Customer.id.in_(latest_risk_ids(flt.risk_band)))
    if flt.health_band:
        if flt.health_band not in HEALTH_BANDS:
            raise InvalidInput(
                f"health band {flt.health_band!r}", field="health", expected="red, yellow or green"
            )
        query = query.where(Customer.id.in_(latest_health_ids(flt.health_band)))
    return query


def count(*, db_session: Session, flt: ListFilter) -> int:
    """How many customers match ``flt``."""
    return int(db_session.scalar(filtered(db_session, select(func.count(Customer.id)), flt)) or 0)


def _order(sort: str, descending: bool):
    if sort not in SORTS:
        raise InvalidInput(f"cannot sort by {sort!r}", field="sort", expected=", ".join(SORTS))
    column = SORTS[sort]
    return (column.desc() if descending else column.asc(), Customer.id)


def page(
    *,
    db_session: Session,
    flt: ListFilter,
    sort: str = "name",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[ListRow]:
    """One page of matching customers with plan, MRR, risk and health."""
    customers = list(
        db_session.scalars(
            filtered(db_session, select(Customer), flt)
            .order_by(*_order(sort, descending))
            .limit(limit)
            .offset(offset)
        )
    )
    return _rows(db_session, customers)


def _rows(db_session: Session, customers: Sequence[Customer]) -> list[ListRow]:
    ids = [c.id for c in customers]
    subs = billing_service.current_subscriptions(
        db_session=db_session, customer_ids=ids, at=utcnow()
    )
    risk = latest_risk(db_session=db_session, customer_ids=ids)
    health = latest_health(db_session=db_session, customer_ids=ids)
    rows = []
    for c in customers:
        s = subs.get(c.id, [])
        r = risk.get(c.id)
        h = health.get(c.id)
        rows.append(
            ListRow(
                customer=c,
                plan=", ".join(x.plan for x in s) or None,
                mrr_minor=sum(x.mrr_minor for x in s),
                currency=s[0].currency if s else None,
                risk_band=r.band if r else None,
                probability=r.probability if r else None,
                health_band=h.band if h else None,
                health=h.score if h else None,
            )
        )
    return rows


def iter_rows(
    *,
    db_session: Session,
    flt: ListFilter,
    sort: str = "name",
    descending: bool = False,
    batch: int = 1000,
) -> Iterator[ListRow]:
    """Every matching customer in one streamed query (no offsets), enriched ``batch`` rows at a
    time (for the CSV export)."""
    query = (
        filtered(db_session, select(Customer), flt)
        .order_by(*_order(sort, descending))
        .execution_options(yield_per=batch)
    )
    for chunk in db_session.scalars(query).partitions():
        yield from _rows(db_session, chunk)
        for customer in chunk:
            db_session.expunge(customer)


def latest_risk(*, db_session: Session, customer_ids: Sequence[int]) -> dict[int, RiskScore]:
    """Each given customer's score in the latest risk run (customers not scored are absent)."""
    if not customer_ids:
        return {}
    run = _latest_risk_run()
    rows = db_session.scalars(
        select(RiskScore)
        .join(run, and_(run.c.as_of == RiskScore.as_of, run.c.scored_at == RiskScore.scored_at))
        .where(RiskScore.customer_id.in_(list(customer_ids)))
    )
    return {r.customer_id: r for r in rows}


def latest_health(*, db_session: Session, customer_ids: Sequence[int]) -> dict[int, HealthScore]:
    """Each given customer's newest health score."""
    if not customer_ids:
        return {}
    rows = db_session.scalars(
        select(HealthScore)
        .where(HealthScore.customer_id.in_(list(customer_ids)))
        .order_by(HealthScore.as_of, HealthScore.id)
    )
    return {r.customer_id: r for r in rows}  # the newest wins


@dataclass(frozen=True)
class RiskSummary:
    """The latest risk run: when, how many customers per band, revenue at risk per currency."""

    as_of: datetime
    bands: dict[str, int]
    revenue_at_risk_minor: dict[str, int]

    @property
    def at_risk(self) -> int:
        return self.bands.get("high", 0)


def risk_summary(*, db_session: Session) -> RiskSummary | None:
    """Totals of the latest risk scoring run (None before the first run)."""
    run = db_session.execute(
        select(RiskScore.as_of, RiskScore.scored_at)
        .order_by(RiskScore.as_of.desc(), RiskScore.scored_at.desc())
        .limit(1)
    ).first()
    if run is None:
        return None
    in_run = and_(RiskScore.as_of == run.as_of, RiskScore.scored_at == run.scored_at)
    bands = dict(
        db_session.execute(
            select(RiskScore.band, func.count()).where(in_run).group_by(RiskScore.band)
        ).all()
    )
    money: dict[str, int] = defaultdict(int)
    for currency, total in db_session.execute(
        select(RiskScore.currency, func.sum(RiskScore.revenue_at_risk_minor))
        .where(in_run, RiskScore.currency.is_not(None))
        .group_by(RiskScore.currency)
    ):
        money[currency] += int(total or 0)
    return RiskSummary(
        as_of=run.as_of,
        bands={k: int(v) for k, v in bands.items()},
        revenue_at_risk_minor=dict(money),
    )
