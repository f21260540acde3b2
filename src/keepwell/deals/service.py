"""Deal service: stages, deals, moves with history, won/lost, weighted pipeline, renewals.

Definitions (PRODUCT.md section 5, CRM basics):

- A deal is *open* while its stage's outcome is ``open``; moving it into a ``won`` or ``lost``
  stage closes it (``closed_at``), moving it back out reopens it.
- Weighted value of a deal = ``value_minor x probability_pct / 100`` of its current stage.
  Pipeline figures cover open deals, per currency (amounts in different currencies are never
  added); each total is rounded once, half-even, to whole minor units.
- A subscription *renews* every billing period after it started: at
  ``started_at + k x period`` (k = 1, 2, ...). :func:`create_renewal_deals` opens one renewal
  deal per subscription and renewal date within ``days_ahead`` days (idempotent: the deal's
  dedup key is ``renewal:<subscription id>:<renewal date>``).

Every deal change goes on the customer's timeline (kind ``deal``). Services flush; the caller
commits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from babel.numbers import is_currency
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keepwell.billing.models import (
    MONTHS_PER_PERIOD,
    BillingPeriod,
    Subscription,
    SubscriptionStatus,
)
from keepwell.customers.models import Customer
from keepwell.deals.models import Deal, DealKind, DealStage, DealStageChange, StageOutcome
from keepwell.errors import InvalidInput, NotFound
from keepwell.models import apply_changes, utcnow
from keepwell.money import format_money
from keepwell.tasks.service import UNSET, parse_due
from keepwell.tasks.staff import get_staff_or_raise
from keepwell.timeline import service as timeline
from keepwell.users.models import StaffUser

TITLE_MAX = 255


# --- stages -------------------------------------------------------------------------------


def list_stages(*, db_session: Session) -> list[DealStage]:
    """The pipeline's stages in order."""
    return list(db_session.scalars(select(DealStage).order_by(DealStage.position, DealStage.id)))


def get_stage_or_raise(*, db_session: Session, stage: str | int) -> DealStage:
    """The stage with this name (case-insensitive) or id; :class:`NotFound` otherwise."""
    found: DealStage | None
    if isinstance(stage, int) and not isinstance(stage, bool):
        found = db_session.get(DealStage, stage)
    else:
        name = str(stage).strip().lower()
        found = db_session.scalars(
            select(DealStage).where(func.lower(DealStage.name) == name)
        ).first()
    if found is None:
        names = ", ".join(s.name for s in list_stages(db_session=db_session))
        raise NotFound(f"no deal stage {stage!r}", hint=f"stages: {names}")
    return found


def _outcome(value: StageOutcome | str) -> StageOutcome:
    try:
        return StageOutcome(value)
    except ValueError:
        raise InvalidInput(
            f"unknown outcome {value!r}", field="outcome", expected="open, won or lost"
        ) from None


def configure_stage(
    *,
    db_session: Session,
    name: str,
    position: int | None = None,
    probability_pct: int | None = None,
    outcome: StageOutcome | str | None = None,
) -> DealStage:
    """Create a stage, or change an existing one's position, probability or outcome."""
    clean = (name or "").strip()
    if not clean or len(clean) > 64:
        raise InvalidInput("a stage needs a name of 1-64 characters", field="name")
    if probability_pct is not None and (
        isinstance(probability_pct, bool)
        or not isinstance(probability_pct, int)
        or not 0 <= probability_pct <= 100
    ):
        raise InvalidInput(
            f"probability {probability_pct!r} is out of range",
            field="probability_pct",
            expected="a whole percentage 0-100",
        )
    kind = _outcome(outcome) if outcome is not None else None
    stage = db_session.scalars(
        select(DealStage).where(func.lower(DealStage.name) == clean.lower())
    ).first()
    if stage is None:
        if position is None:
            last = db_session.scalar(select(func.max(DealStage.position)))
            position = (last or 0) + 10
        stage = DealStage(
            name=clean,
            position=position,
            probability_pct=probability_pct if probability_pct is not None else 0,
            outcome=kind or StageOutcome.open,
        )
        db_session.add(stage)
    else:
        if kind is not None and kind is not stage.outcome:
            in_use = db_session.scalar(select(func.count(Deal.id)).where(Deal.stage_id == stage.id))
            if in_use:
                raise InvalidInput(
                    f"stage {stage.name!r} holds {in_use} deal(s); its outcome cannot change",
                    field="outcome",
                    hint="move the deals first",
                )
            stage.outcome = kind
        if position is not None:
            stage.position = position
        if probability_pct is not None:
            stage.probability_pct = probability_pct
    db_session.flush()
    return stage


def delete_stage(*, db_session: Session, stage: str | int) -> None:
    """Remove a stage that no deal is in and no history mentions."""
    found = get_stage_or_raise(db_session=db_session, stage=stage)
    used = db_session.scalar(select(func.count(Deal.id)).where(Deal.stage_id == found.id))
    moved = db_session.scalar(
        select(func.count(DealStageChange.id)).where(
            or_(DealStageChange.to_stage_id == found.id, DealStageChange.from_stage_id == found.id)
        )
    )
    if used or moved:
        raise InvalidInput(f"stage {found.name!r} is in use by deals or their history")
    db_session.delete(found)
    db_session.flush()


def _first_stage(db_session: Session, outcome: StageOutcome) -> DealStage:
    stage = db_session.scalars(
        select(DealStage)
        .where(DealStage.outcome == outcome)
        .order_by(DealStage.position, DealStage.id)
    ).first()
    if stage is None:
        raise NotFound(
            f"the pipeline has no {outcome.value} stage", hint="add one with configure_stage"
        )
    return stage


# --- validation ---------------------------------------------------------------------------


def _title(value: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput("a deal needs a title", field="title", expected="non-empty text")
    if len(text) > TITLE_MAX:
        raise InvalidInput(
            f"title is {len(text)} characters long", field="title", expected=f"<= {TITLE_MAX}"
        )
    return text


def _value(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"{value!r} is not an amount in minor units",
            field="value_minor",
            expected="a whole number of cents (or the currency's minor unit)",
        )
    if value < 0:
        raise InvalidInput(f"value {value} is negative", field="value_minor", expected=">= 0")
    return value


def _currency(code: str) -> str:
    text = (code or "").strip().upper()
    if len(text) != 3 or not is_currency(text):
        raise InvalidInput(
            f"unknown currency {code!r}", field="currency", expected="an ISO 4217 code like EUR"
        )
    return text


def _kind(value: DealKind | str) -> DealKind:
    try:
        return DealKind(value)
    except ValueError:
        raise InvalidInput(
            f"unknown deal kind {value!r}",
            field="kind",
            expected=", ".join(k.value for k in DealKind),
        ) from None


def _reason(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _record(db_session: Session, deal: Deal, title: str, actor_id: int | None, **extra) -> None:
    timeline.record(
        db_session=db_session,
        customer_id=deal.customer_id,
        kind="deal",
        title=title,
        detail={"deal_id": deal.id, "stage": deal.stage.name, **extra},
        actor_id=actor_id,
    )


def _money(deal: Deal) -> str:
    return format_money(deal.value_minor, deal.currency)


# --- deals --------------------------------------------------------------------------------


def get(*, db_session: Session, deal_id: int) -> Deal | None:
    """The deal with this id, or None."""
    return db_session.get(Deal, deal_id)


def get_or_raise(*, db_session: Session, deal_id: int) -> Deal:
    """The deal with this id, or :class:`NotFound`."""
    deal = get(db_session=db_session, deal_id=deal_id)
    if deal is None:
        raise NotFound(f"no deal with id {deal_id}", hint="see `keepwell deals list`")
    return deal


def create_deal(
    *,
    db_session: Session,
    customer_id: int,
    title: str,
    value_minor: int,
    currency: str,
    kind: DealKind | str = DealKind.upsell,
    stage: str | int | None = None,
    owner_id: int | None = None,
    expected_close_at: datetime | date | str | None = None,
    subscription_id: int | None = None,
    dedup_key: str | None = None,
    actor_id: int | None = None,
    at: datetime | None = None,
) -> Deal:
    """Open a deal for a customer (in ``stage``, default the first open stage).

    The creation is the first row of the deal's stage history and goes on the timeline. With
    a ``dedup_key`` already used, returns that deal and creates nothing.
    """
    if dedup_key is not None:
        existing = db_session.scalars(select(Deal).where(Deal.dedup_key == dedup_key)).first()
        if existing is not None:
            return existing
    clean_title, amount = _title(title), _value(value_minor)
    code, deal_kind = _currency(currency), _kind(kind)
    close = parse_due(expected_close_at, field="expected_close_at")
    if db_session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        raise NotFound(f"no customer with id {customer_id}")
    if owner_id is not None:
        get_staff_or_raise(db_session=db_session, staff_id=owner_id)
    target = (
        get_stage_or_raise(db_session=db_session, stage=stage)
        if stage is not None
        else _first_stage(db_session, StageOutcome.open)
    )
    when = at or utcnow()
    deal = Deal(
        customer_id=customer_id,
        title=clean_title,
        kind=deal_kind,
        value_minor=amount,
        currency=code,
        owner_id=owner_id,
        stage_id=target.id,
        stage=target,
        expected_close_at=close,
        closed_at=when if target.outcome is not StageOutcome.open else None,
        subscription_id=subscription_id,
        dedup_key=dedup_key,
    )
    try:
        with db_session.begin_nested():
            db_session.add(deal)
            db_session.flush()
    except IntegrityError:
        if dedup_key is not None:
            existing = db_session.scalars(select(Deal).where(Deal.dedup_key == dedup_key)).first()
            if existing is not None:
                return existing
        raise
    db_session.add(
        DealStageChange(
            deal_id=deal.id,
            from_stage_id=None,
            to_stage_id=target.id,
            changed_at=when,
            actor_id=actor_id,
        )
    )
    db_session.flush()
    _record(
        db_session,
        deal,
        f"Deal opened ({deal.kind.value}, {_money(deal)}): {deal.title}",
        actor_id,
        value_minor=deal.value_minor,
        currency=deal.currency,
        kind_of_deal=deal.kind.value,
    )
    return deal


def update_deal(
    *,
    db_session: Session,
    deal_id: int,
    title: str = UNSET,
    value_minor: int = UNSET,
    currency: str = UNSET,
    kind: DealKind | str = UNSET,
    owner_id: int | None = UNSET,
    expected_close_at: datetime | date | str | None = UNSET,
    actor_id: int | None = None,
) -> Deal:
    """Change a deal's fields (only those given); recorded on the timeline."""
    deal = get_or_raise(db_session=db_session, deal_id=deal_id)
    new: dict[str, Any] = {}
    if title is not UNSET:
        new["title"] = _title(title)
    if value_minor is not UNSET:
        new["value_minor"] = _value(value_minor)
    if currency is not UNSET:
        new["currency"] = _currency(currency)
    if kind is not UNSET:
        new["kind"] = _kind(kind)
    if owner_id is not UNSET:
        if owner_id is not None:
            get_staff_or_raise(db_session=db_session, staff_id=owner_id)
        new["owner_id"] = owner_id
    if expected_close_at is not UNSET:
        new["expected_close_at"] = parse_due(expected_close_at, field="expected_close_at")
    changes = apply_changes(deal, new)
    if changes:
        db_session.flush()
        _record(db_session, deal, f"Deal updated: {deal.title}", actor_id, changes=changes)
    return deal


def move_deal(
    *,
    db_session: Session,
    deal_id: int,
    stage: str | int,
    reason: str | None = None,
    actor_id: int | None = None,
    at: datetime | None = None,
) -> Deal:
    """Move a deal to another stage, adding a row to its stage history.

    Into a won/lost stage: the deal closes (``closed_at`` = ``at``, ``close_reason`` =
    ``reason``); a lost deal needs a reason. Back into an open stage: it reopens.
    """
    deal = get_or_raise(db_session=db_session, deal_id=deal_id)
    target = get_stage_or_raise(db_session=db_session, stage=stage)
    if target.id == deal.stage_id:
        raise InvalidInput(f"deal {deal.id} is already in stage {target.name!r}", field="stage")
    why = _reason(reason)
    if target.outcome is StageOutcome.lost and why is None:
        raise InvalidInput("say why the deal was lost", field="reason", expected="some text")
    when = at or utcnow()
    source = deal.stage
    deal.stage_id, deal.stage = target.id, target
    if target.outcome is StageOutcome.open:
        deal.closed_at, deal.close_reason = None, None
    else:
        deal.closed_at, deal.close_reason = when, why
    db_session.add(
        DealStageChange(
            deal_id=deal.id,
            from_stage_id=source.id,
            to_stage_id=target.id,
            changed_at=when,
            actor_id=actor_id,
            reason=why,
        )
    )
    db_session.flush()
    if target.outcome is StageOutcome.won:
        title = f"Deal won ({_money(deal)}): {deal.title}"
    elif target.outcome is StageOutcome.lost:
        title = f"Deal lost ({why}): {deal.title}"
    elif source.outcome is not StageOutcome.open:
        title = f"Deal reopened in {target.name}: {deal.title}"
    else:
        title = f"Deal moved {source.name} -> {target.name}: {deal.title}"
    _record(db_session, deal, title, actor_id, from_stage=source.name, reason=why)
    return deal


def win_deal(
    *,
    db_session: Session,
    deal_id: int,
    reason: str | None = None,
    actor_id: int | None = None,
    at: datetime | None = None,
) -> Deal:
    """Close a deal as won (into the first ``won`` stage)."""
    stage = _first_stage(db_session, StageOutcome.won)
    return move_deal(
        db_session=db_session,
        deal_id=deal_id,
        stage=stage.id,
        reason=reason,
        actor_id=actor_id,
        at=at,
    )


def lose_deal(
    *,
    db_session: Session,
    deal_id: int,
    reason: str,
    actor_id: int | None = None,
    at: datetime | None = None,
) -> Deal:
    """Close a deal as lost, with the reason (into the first ``lost`` stage)."""
    stage = _first_stage(db_session, StageOutcome.lost)
    return move_deal(
        db_session=db_session,
        deal_id=deal_id,
        stage=stage.id,
        reason=reason,
        actor_id=actor_id,
        at=at,
    )


def stage_history(*, db_session: Session, deal_id: int) -> list[DealStageChange]:
    """Every stage change of a deal, oldest first (the first row is its creation)."""
    get_or_raise(db_session=db_session, deal_id=deal_id)
    query = (
        select(DealStageChange)
        .where(DealStageChange.deal_id == deal_id)
        .order_by(DealStageChange.changed_at, DealStageChange.id)
    )
    return list(db_session.scalars(query))


def list_deals(
    *,
    db_session: Session,
    stage: str | int | None = None,
    owner_id: int | None = None,
    customer_id: int | None = None,
    kind: DealKind | str | None = None,
    open_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[Deal]:
    """Deals matching every given filter, by stage order then expected close (undated last)."""
    if limit < 1 or limit > 10_000 or offset < 0:
        raise InvalidInput("limit must be 1-10000 and offset >= 0", field="limit")
    query = select(Deal).join(DealStage, Deal.stage_id == DealStage.id)
    if stage is not None:
        query = query.where(
            Deal.stage_id == get_stage_or_raise(db_session=db_session, stage=stage).id
        )
    if owner_id is not None:
        query = query.where(Deal.owner_id == owner_id)
    if customer_id is not None:
        query = query.where(Deal.customer_id == customer_id)
    if kind is not None:
        query = query.where(Deal.kind == _kind(kind))
    if open_only:
        query = query.where(DealStage.outcome == StageOutcome.open)
    order = (
        DealStage.position,
        Deal.expected_close_at.is_(None),
        Deal.expected_close_at,
        Deal.id,
    )
    return list(db_session.scalars(query.order_by(*order).limit(limit).offset(offset)))


# --- pipeline -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineLine:
    """Open deals of one stage (or one owner) in one currency.

    ``weighted_minor`` = round(sum of value_minor x probability_pct / 100), half-even.
    """

    key: str
    currency: str
    deals: int
    value_minor: int
    weighted_minor: int
    probability_pct: int | None = None
    owner_id: int | None = None


@dataclass(frozen=True)
class PipelineSummary:
    """The open pipeline by stage, by owner, and in total (all per currency)."""

    by_stage: list[PipelineLine]
    by_owner: list[PipelineLine]
    totals: list[PipelineLine] = field(default_factory=list)


def _round_pct(numerator: int) -> int:
    """numerator / 100 rounded half-even (numerator = sum of value x percent)."""
    return int((Decimal(numerator) / 100).to_integral_value(rounding=ROUND_HALF_EVEN))


def pipeline_summary(
    *,
    db_session: Session,
    owner_id: int | None = None,
    kind: DealKind | str | None = None,
) -> PipelineSummary:
    """Weighted value of the open pipeline per stage, per owner and in total, per currency.

    Every open stage appears in ``by_stage`` for each currency that has deals (with zeros
    where a stage is empty). ``by_owner`` has a line per owner (``owner_id`` None: unowned).
    """
    query = (
        select(
            Deal.stage_id,
            Deal.owner_id,
            Deal.currency,
            func.count(Deal.id),
            func.sum(Deal.value_minor),
            func.sum(Deal.value_minor * DealStage.probability_pct),
        )
        .join(DealStage, Deal.stage_id == DealStage.id)
        .where(DealStage.outcome == StageOutcome.open)
        .group_by(Deal.stage_id, Deal.owner_id, Deal.currency)
    )
    if owner_id is not None:
        query = query.where(Deal.owner_id == owner_id)
    if kind is not None:
        query = query.where(Deal.kind == _kind(kind))
    rows = db_session.execute(query).all()
    stages = [s for s in list_stages(db_session=db_session) if s.outcome is StageOutcome.open]
    currencies = sorted({r[2] for r in rows})
    zero = lambda: [0, 0, 0]  # noqa: E731 - deals, value, value x pct
    per_stage: dict[tuple[int, str], list[int]] = defaultdict(zero)
    per_owner: dict[tuple[int | None, str], list[int]] = defaultdict(zero)
    per_currency: dict[str, list[int]] = defaultdict(zero)
    for stage_id, owner, currency, n, value, weighted in rows:
        for bucket in (
            per_stage[stage_id, currency],
            per_owner[owner, currency],
            per_currency[currency],
        ):
            bucket[0] += int(n)
            bucket[1] += int(value or 0)
            bucket[2] += int(weighted or 0)
    by_stage = [
        PipelineLine(
            key=s.name,
            currency=cur,
            deals=per_stage[s.id, cur][0],
            value_minor=per_stage[s.id, cur][1],
            weighted_minor=_round_pct(per_stage[s.id, cur][2]),
            probability_pct=s.probability_pct,
        )
        for cur in currencies
        for s in stages
    ]
    owner_ids = [o for o, _ in per_owner if o is not None]
    names = (
        {
            u.id: u.name
            for u in db_session.scalars(select(StaffUser).where(StaffUser.id.in_(owner_ids)))
        }
        if owner_ids
        else {}
    )
    by_owner = sorted(
        (
            PipelineLine(
                key=names.get(owner, "unassigned") if owner is not None else "unassigned",
                currency=cur,
                deals=v[0],
                value_minor=v[1],
                weighted_minor=_round_pct(v[2]),
                owner_id=owner,
            )
            for (owner, cur), v in per_owner.items()
        ),
        key=lambda line: (line.currency, -line.weighted_minor, line.key),
    )
    totals = [
        PipelineLine(
            key="total", currency=cur, deals=v[0], value_minor=v[1], weighted_minor=_round_pct(v[2])
        )
        for cur, v in sorted(per_currency.items())
    ]
    return PipelineSummary(by_stage=by_stage, by_owner=by_owner, totals=totals)


# --- renewals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RenewalRun:
    """What :func:`create_renewal_deals` did: deals created and renewals already covered."""

    created: list[Deal]
    existing: int
    checked: int


def next_renewal(sub: Subscription, *, after: datetime) -> datetime:
    """The subscription's first renewal strictly after ``after``: started_at + k x period."""
    months = MONTHS_PER_PERIOD[sub.billing_period]
    elapsed = (after.year - sub.started_at.year) * 12 + after.month - sub.started_at.month
    k = max(1, elapsed // months - 1)  # a period that still lies before ``after``
    while sub.started_at + relativedelta(months=k * months) <= after:
        k += 1
    return sub.started_at + relativedelta(months=k * months)


def _periods(values) -> list[BillingPeriod]:
    out = []
    for v in values:
        try:
            out.append(BillingPeriod(v))
        except ValueError:
            raise InvalidInput(
                f"unknown billing period {v!r}", field="periods", expected="month, quarter, year"
            ) from None
    return out


def create_renewal_deals(
    *,
    db_session: Session,
    days_ahead: int = 60,
    at: datetime | None = None,
    periods: tuple[str, ...] | list[str] = ("year",),
    stage: str | int | None = None,
) -> RenewalRun:
    """Open a renewal deal for every subscription renewing within ``days_ahead`` days of ``at``.

    Covers subscriptions in force at ``at`` (not cancelled, MRR > 0) billed per one of
    ``periods`` (default yearly contracts). The deal's value is one period's revenue
    (MRR x months per period), its owner the customer's owner, its expected close the renewal
    date. Running again creates nothing new for renewals already covered.
    """
    if (
        isinstance(days_ahead, bool)
        or not isinstance(days_ahead, int)
        or not 0 < days_ahead <= 3660
    ):
        raise InvalidInput(f"{days_ahead!r} days", field="days_ahead", expected="1-3660")
    wanted = _periods(periods)
    now = at or utcnow()
    horizon = now + timedelta(days=days_ahead)
    query = (
        select(Subscription, Customer.owner_id, StaffUser.is_active)
        .join(Customer, Customer.id == Subscription.customer_id)
        .outerjoin(StaffUser, StaffUser.id == Customer.owner_id)
        .where(
            Subscription.started_at <= now,
            or_(Subscription.ended_at.is_(None), Subscription.ended_at > now),
            Subscription.status != SubscriptionStatus.canceled,
            Subscription.mrr_minor > 0,
            Subscription.billing_period.in_(wanted),
        )
        .order_by(Subscription.id)
    )
    due: list[_Renewal] = []
    for sub, owner_id, owner_active in db_session.execute(query).all():
        renewal = next_renewal(sub, after=now)
        if renewal > horizon or (sub.ended_at is not None and sub.ended_at <= renewal):
            continue  # not due yet, or the row ends before it would renew
        key = f"renewal:{sub.id}:{renewal.date().isoformat()}"
        due.append(_Renewal(sub, renewal, key, owner_id if owner_active else None))
    taken: set[str] = set()
    for start in range(0, len(due), 500):
        keys = [r.key for r in due[start : start + 500]]
        taken.update(db_session.scalars(select(Deal.dedup_key).where(Deal.dedup_key.in_(keys))))
    todo = [r for r in due if r.key not in taken]
    target = (
        get_stage_or_raise(db_session=db_session, stage=stage)
        if stage is not None
        else _first_stage(db_session, StageOutcome.open)
    )
    try:
        with db_session.begin_nested():
            created = _insert_renewals(db_session, todo, target, now)
    except IntegrityError:  # a concurrent run took some of the keys: go one by one
        created = []
        for r in todo:
            if db_session.scalar(select(Deal.id).where(Deal.dedup_key == r.key)) is None:
                created.append(_renewal_deal(db_session, r, target, now))
    return RenewalRun(created=created, existing=len(due) - len(created), checked=len(due))


@dataclass(frozen=True)
class _Renewal:
    sub: Subscription
    renewal: datetime
    key: str
    owner_id: int | None


def _renewal_fields(r: _Renewal) -> dict[str, Any]:
    months = MONTHS_PER_PERIOD[r.sub.billing_period]
    return {
        "customer_id": r.sub.customer_id,
        "title": f"Renewal of {r.sub.plan} on {r.renewal:%Y-%m-%d}",
        "value_minor": r.sub.mrr_minor * months,
        "currency": r.sub.currency,
        "kind": DealKind.renewal,
        "owner_id": r.owner_id,
        "expected_close_at": r.renewal,
        "subscription_id": r.sub.id,
        "dedup_key": r.key,
    }


def _renewal_deal(db_session: Session, r: _Renewal, stage: DealStage, now: datetime) -> Deal:
    return create_deal(db_session=db_session, stage=stage.id, at=now, **_renewal_fields(r))


def _insert_renewals(
    db_session: Session, todo: list[_Renewal], stage: DealStage, now: datetime
) -> list[Deal]:
    """Insert many renewal deals at once: deals, then their first history rows, then timeline."""
    closed = now if stage.outcome is not StageOutcome.open else None
    deals = [
        Deal(stage_id=stage.id, stage=stage, closed_at=closed, **_renewal_fields(r)) for r in todo
    ]
    db_session.add_all(deals)
    db_session.flush()
    db_session.add_all(
        DealStageChange(deal_id=d.id, from_stage_id=None, to_stage_id=stage.id, changed_at=now)
        for d in deals
    )
    db_session.flush()
    for deal in deals:
        _record(
            db_session,
            deal,
            f"Deal opened ({deal.kind.value}, {_money(deal)}): {deal.title}",
            None,
            value_minor=deal.value_minor,
            currency=deal.currency,
            kind_of_deal=deal.kind.value,
        )
    return deals


__all__ = [
    "PipelineLine",
    "PipelineSummary",
    "RenewalRun",
    "configure_stage",
    "create_deal",
    "create_renewal_deals",
    "delete_stage",
    "get",
    "get_or_raise",
    "get_stage_or_raise",
    "list_deals",
    "list_stages",
    "lose_deal",
    "move_deal",
    "next_renewal",
    "pipeline_summary",
    "stage_history",
    "update_deal",
    "win_deal",
]
