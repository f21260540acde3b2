"""Journeys: define them, enrol customers, and :func:`advance` everyone who is due.

An enrolment points at its next step (``position``) and the time it may run (``due_at``).
:func:`advance` (called by every ``keepwell automation run``) first enrols customers from
event and segment triggers, then, for each active enrolment that is due: leaves the journey
when an exit condition holds, else runs steps in order until a ``wait`` (which moves
``due_at`` on) or the end. Each step's outcome is a ``journey_step_runs`` row unique on
(enrolment, position), so a step never runs twice; a failed step stays put and is retried
on the next run. Timing depends only on ``now``: pass it to test or replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keepwell.automation import actions as A
from keepwell.billing.models import Subscription, SubscriptionStatus
from keepwell.config import Settings
from keepwell.customers.models import Customer, CustomerStatus
from keepwell.errors import AlreadyExists, InvalidInput, KeepwellError, NotFound
from keepwell.journeys import definitions
from keepwell.journeys.models import Journey, JourneyEnrollment, JourneyStep, JourneyStepRun
from keepwell.models import row_id, utcnow
from keepwell.timeline.service import record

__all__ = [
    "MAX_ATTEMPTS",
    "AdvanceReport",
    "Enrollment",
    "StepReport",
    "advance",
    "create_journey",
    "enrol",
    "enrollment_counts",
    "enrollments",
    "get_journey",
    "get_journey_or_raise",
    "list_journeys",
    "step_runs",
]

Enrollment = JourneyEnrollment
"""The enrolment row type (``enrol`` returns one)."""

MAX_ATTEMPTS = 5
"""Attempts of a failing step before it is given up and the journey moves on."""

LOOKBACK_DAYS = 7
"""How far back event and segment triggers look on every run (late events are caught)."""


@dataclass(frozen=True)
class StepReport:
    """A step that ran (or, in a dry run, would run) for one customer."""

    journey: str
    customer_id: int
    position: int
    kind: str
    status: str
    """``done``, ``skipped``, ``failed``, ``gave_up``, ``waiting`` or ``would run``."""
    detail: str = ""


@dataclass
class AdvanceReport:
    """What :func:`advance` did."""

    enrolled: list[tuple[str, int, str]] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)
    exited: list[tuple[str, int, str]] = field(default_factory=list)
    completed: list[tuple[str, int]] = field(default_factory=list)

    @property
    def did_nothing(self) -> bool:
        """True when nobody was enrolled, moved, exited or completed."""
        return not (self.enrolled or self.steps or self.exited or self.completed)


# -- definitions ---------------------------------------------------------------------------


def get_journey(*, db_session: Session, name_or_id: str | int) -> Journey | None:
    """A journey by name or id, or None."""
    found_id = row_id(name_or_id)
    if found_id is not None and (found := db_session.get(Journey, found_id)) is not None:
        return found
    return db_session.scalar(select(Journey).where(Journey.name == str(name_or_id)))


def get_journey_or_raise(*, db_session: Session, name_or_id: str | int) -> Journey:
    """A journey by name or id; :class:`NotFound` when there is none."""
    journey = get_journey(db_session=db_session, name_or_id=name_or_id)
    if journey is None:
        raise NotFound(f"no journey {name_or_id!r}", hint="list them with `keepwell journeys list`")
    return journey


def list_journeys(*, db_session: Session) -> list[Journey]:
    """Every journey, by name."""
    return list(db_session.scalars(select(Journey).order_by(Journey.name)))


def create_journey(*, db_session: Session, definition: dict[str, Any]) -> Journey:
    """Validate ``definition`` (see :mod:`keepwell.journeys.definitions`) and save it."""
    checked = definitions.journey(definition)
    if get_journey(db_session=db_session, name_or_id=checked["name"]) is not None:
        raise AlreadyExists(f"a journey named {checked['name']!r} already exists")
    for i, cond in enumerate(checked["exit_conditions"]):
        if cond["kind"] == "filter":
            _check_filter(db_session, cond["filter"], f"exit_conditions[{i}].filter")
    steps = checked.pop("steps")
    journey = Journey(**checked)
    for i, step in enumerate(steps):
        kind = step.pop("kind")
        journey.steps.append(JourneyStep(position=i, kind=kind, params=step))
    db_session.add(journey)
    db_session.flush()
    return journey


def _check_filter(db_session: Session, text: str, where: str) -> None:
    try:
        from keepwell.segments.service import matching_customer_ids
    except ImportError:
        raise InvalidInput("filters need keepwell.segments", field=where) from None
    try:
        matching_customer_ids(db_session=db_session, filter_text=text)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=where) from None


def step_dict(step: JourneyStep) -> dict[str, Any]:
    """A step as written in a definition (``kind`` plus its parameters)."""
    return {"kind": step.kind, **step.params}


# -- enrolment -------------------------------------------------------------------------------


def enrol(
    *,
    db_session: Session,
    journey: Journey | str | int,
    customer_id: int,
    reason: str,
    now: datetime | None = None,
) -> Enrollment | None:
    """Put a customer into a journey; None when already in it (or through it) or disabled.

    A customer goes through a journey once. The first step is due at once (``now``).
    """
    if not isinstance(journey, Journey):
        journey = get_journey_or_raise(db_session=db_session, name_or_id=journey)
    if db_session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer with id {customer_id}")
    if not journey.enabled:
        return None
    existing = db_session.scalar(
        select(JourneyEnrollment.id).where(
            JourneyEnrollment.journey_id == journey.id,
            JourneyEnrollment.customer_id == customer_id,
        )
    )
    if existing is not None:
        return None
    now = now or utcnow()
    enrollment = JourneyEnrollment(
        journey_id=journey.id,
        customer_id=customer_id,
        reason=(reason or "enrolled")[:500],
        enrolled_at=now,
        due_at=now,
    )
    try:
        with db_session.begin_nested():
            db_session.add(enrollment)
            db_session.flush()
    except IntegrityError:  # enrolled concurrently
        return None
    record(
        db_session=db_session,
        customer_id=customer_id,
        kind="journey",
        title=f"Entered journey {journey.name}: {reason}"[:500],
        detail={"journey": journey.name, "enrollment_id": enrollment.id, "reason": reason},
        occurred_at=now,
    )
    return enrollment


def enrollments(
    *, db_session: Session, journey: Journey, status: str | None = None, limit: int = 100
) -> list[JourneyEnrollment]:
    """The journey's enrolments, newest first (optionally only one ``status``)."""
    query = select(JourneyEnrollment).where(JourneyEnrollment.journey_id == journey.id)
    if status:
        query = query.where(JourneyEnrollment.status == status)
    order = [JourneyEnrollment.enrolled_at.desc(), JourneyEnrollment.id.desc()]
    return list(db_session.scalars(query.order_by(*order).limit(limit)))


def enrollment_counts(*, db_session: Session) -> dict[tuple[int, str], int]:
    """(journey id, status) -> number of enrolments."""
    rows = db_session.execute(
        select(JourneyEnrollment.journey_id, JourneyEnrollment.status, func.count()).group_by(
            JourneyEnrollment.journey_id, JourneyEnrollment.status
        )
    ).all()
    return {(jid, status): n for jid, status, n in rows}


def step_runs(*, db_session: Session, enrollment: JourneyEnrollment) -> list[JourneyStepRun]:
    """The enrolment's step outcomes, in step order."""
    return list(
        db_session.scalars(
            select(JourneyStepRun)
            .where(JourneyStepRun.enrollment_id == enrollment.id)
            .order_by(JourneyStepRun.position)
        )
    )


# -- triggers --------------------------------------------------------------------------------


def _event_customers(settings: Settings, event: str, start: datetime, end: datetime):
    """External customer ids with an ``event`` in (start, end], with their first time."""
    import duckdb

    from keepwell.events.store import EventStore

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        EventStore.from_settings(settings).register(con, "kw_events")
        return con.execute(
            "SELECT customer_id, min(occurred_at) FROM kw_events "
            "WHERE event = ? AND occurred_at > ? AND occurred_at <= ? "
            "GROUP BY customer_id ORDER BY 2, 1",
            [event, start, end],
        ).fetchall()
    finally:
        con.close()


def _triggered(
    db_session: Session, settings: Settings, journey: Journey, now: datetime
) -> list[tuple[int, str]]:
    # look back a whole window every run, so events imported late are still caught;
    # customers already enrolled are filtered out by the caller
    start = now - timedelta(days=LOOKBACK_DAYS)
    if journey.trigger == "event":
        rows = _event_customers(settings, journey.trigger_value, start, now)
        ids = dict(
            db_session.execute(
                select(Customer.external_id, Customer.id).where(
                    Customer.external_id.in_([r[0] for r in rows])
                )
            ).all()
        )
        return [
            (ids[ext], f"event {journey.trigger_value!r} at {at:%Y-%m-%d %H:%M} UTC")
            for ext, at in rows
            if ext in ids
        ]
    from keepwell.segments.models import Segment, SegmentMembershipChange

    rows = db_session.execute(
        select(SegmentMembershipChange.customer_id, SegmentMembershipChange.at)
        .join(Segment, Segment.id == SegmentMembershipChange.segment_id)
        .where(
            Segment.name == journey.trigger_value,
            SegmentMembershipChange.change == "entered",
            SegmentMembershipChange.at > start,
            SegmentMembershipChange.at <= now,
        )
        .order_by(SegmentMembershipChange.at, SegmentMembershipChange.customer_id)
    ).all()
    return [(cid, f"entered segment {journey.trigger_value!r}") for cid, _ in rows]


def _already_enrolled(db_session: Session, journey: Journey, ids: list[int]) -> set[int]:
    out: set[int] = set()
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), 500):
        out.update(
            db_session.scalars(
                select(JourneyEnrollment.customer_id).where(
                    JourneyEnrollment.journey_id == journey.id,
                    JourneyEnrollment.customer_id.in_(ordered[start : start + 500]),
                )
            )
        )
    return out


# -- advancing -------------------------------------------------------------------------------


def _paying(db_session: Session, customer_id: int, now: datetime) -> bool:
    return (
        db_session.scalar(
            select(Subscription.id)
            .where(
                Subscription.customer_id == customer_id,
                Subscription.mrr_minor > 0,
                Subscription.status.in_([SubscriptionStatus.active, SubscriptionStatus.past_due]),
                Subscription.started_at <= now,
                (Subscription.ended_at.is_(None)) | (Subscription.ended_at > now),
            )
            .limit(1)
        )
        is not None
    )


def _exit_reason(
    db_session: Session, journey: Journey, enrollment: JourneyEnrollment, customer, now
) -> str | None:
    for cond in journey.exit_conditions:
        kind = cond["kind"]
        if kind == "churned" and customer.status == CustomerStatus.churned:
            return "churned"
        if kind == "became_paying" and _paying(db_session, customer.id, now):
            return "became paying"
        if kind == "unsubscribed" and A.is_unsubscribed(db_session, customer):
            return "unsubscribed"
        if kind == "filter":
            from keepwell.segments.service import matching_customer_ids

            ids = matching_customer_ids(db_session=db_session, filter_text=cond["filter"], now=now)
            if db_session.scalar(ids.where(Customer.id == customer.id).limit(1)) is not None:
                return f"matches {cond['filter']!r}"
    return None


def _renewal_wait(db_session: Session, customer_id: int, days: int, now: datetime):
    from keepwell.automation.triggers import next_renewal

    subs = db_session.scalars(
        select(Subscription).where(
            Subscription.customer_id == customer_id,
            Subscription.mrr_minor > 0,
            Subscription.status.in_([SubscriptionStatus.active, SubscriptionStatus.past_due]),
            Subscription.started_at <= now,
            Subscription.ended_at.is_(None),
        )
    ).all()
    if not subs:
        return None
    renewal = min(next_renewal(sub, now) for sub in subs)
    return renewal - timedelta(days=days)


def _step_run(db_session: Session, enrollment: JourneyEnrollment, step: JourneyStep):
    return db_session.scalar(
        select(JourneyStepRun).where(
            JourneyStepRun.enrollment_id == enrollment.id,
            JourneyStepRun.position == step.position,
        )
    )


def _finish(db_session, journey, enrollment, now, status, reason=None) -> None:
    enrollment.status = status
    enrollment.finished_at = now
    enrollment.exit_reason = reason
    title = (
        f"Left journey {journey.name}: {reason}"
        if status == "exited"
        else f"Completed journey {journey.name}"
    )
    record(
        db_session=db_session,
        customer_id=enrollment.customer_id,
        kind="journey",
        title=title[:500],
        detail={"journey": journey.name, "enrollment_id": enrollment.id, "status": status},
        occurred_at=now,
    )


def _advance_one(
    db_session: Session,
    settings: Settings,
    journey: Journey,
    enrollment: JourneyEnrollment,
    now: datetime,
    dry_run: bool,
    report: AdvanceReport,
) -> None:
    customer = db_session.get(Customer, enrollment.customer_id)
    steps = journey.steps
    while True:
        reason = _exit_reason(db_session, journey, enrollment, customer, now)
        if reason is not None:
            report.exited.append((journey.name, customer.id, reason))
            if not dry_run:
                _finish(db_session, journey, enrollment, now, "exited", reason)
            return
        if enrollment.position >= len(steps):
            report.completed.append((journey.name, customer.id))
            if not dry_run:
                _finish(db_session, journey, enrollment, now, "completed")
            return
        step = steps[enrollment.position]
        if dry_run:
            detail = A.describe({"type": step.kind, **step.params})
            report.steps.append(
                StepReport(journey.name, customer.id, step.position, step.kind, "would run", detail)
            )
            return
        status, detail, result = _run_step(
            db_session, settings, journey, enrollment, step, customer, now
        )
        report.steps.append(
            StepReport(journey.name, customer.id, step.position, step.kind, status, detail)
        )
        if status == "failed":
            return  # retried on the next run
        enrollment.position += 1
        if status == "waiting":
            enrollment.due_at = result
            db_session.flush()
            return
        db_session.flush()


def _run_step(db_session, settings, journey, enrollment, step, customer, now):
    """Run one step; record it; return (status, detail, wait-until or None)."""
    run = _step_run(db_session, enrollment, step)
    if run is None:
        run = JourneyStepRun(
            enrollment_id=enrollment.id,
            position=step.position,
            kind=step.kind,
            status="pending",
            attempts=0,
            ran_at=now,
        )
        db_session.add(run)
    run.attempts += 1
    run.ran_at = now
    until = None
    params = step.params
    if step.kind == "wait":
        if params.get("before_renewal_days") is not None:
            until = _renewal_wait(db_session, customer.id, params["before_renewal_days"], now)
            if until is None or until <= now:
                until = now
        else:
            until = now + timedelta(days=params.get("days", 0), hours=params.get("hours", 0))
        run.status, run.result, run.error = "done", {"until": until.isoformat()}, None
        db_session.flush()
        status = "waiting" if until > now else "done"
        return status, f"until {until:%Y-%m-%d %H:%M} UTC", until
    if step.kind == "send_email" and not customer.email:
        run.status, run.result, run.error = "skipped", {"why": "no e-mail address"}, None
        db_session.flush()
        return "skipped", "no e-mail address", None
    if step.kind == "send_email" and A.is_unsubscribed(db_session, customer):
        run.status, run.result, run.error = "skipped", {"why": "unsubscribed"}, None
        db_session.flush()
        return "skipped", "unsubscribed: no e-mail sent", None
    ctx = A.ActionContext(
        customer=customer,
        key=f"journey:{enrollment.id}:{step.position}",
        reason=enrollment.reason,
        now=now,
        journey=journey.name,
        source=f"journey:{journey.id}",
    )
    action = {"type": step.kind, **params}
    try:
        result = A.execute(db_session=db_session, settings=settings, action=action, ctx=ctx)
    except Exception as exc:  # recorded and retried; never fatal to the run
        message = exc.message if isinstance(exc, KeepwellError) else f"{type(exc).__name__}: {exc}"
        gave_up = run.attempts >= MAX_ATTEMPTS
        run.status, run.result, run.error = ("gave_up" if gave_up else "failed"), {}, message
        db_session.flush()
        return ("gave_up" if gave_up else "failed"), message, None
    run.status, run.result, run.error = "done", result, None
    db_session.flush()
    return "done", A.describe(action), None


def advance(
    *, db_session: Session, settings: Settings, now: datetime | None = None, dry_run: bool = False
) -> AdvanceReport:
    """Enrol triggered customers and run every due step (see the module docstring)."""
    now = now or utcnow()
    report = AdvanceReport()
    journeys = list(db_session.scalars(select(Journey).where(Journey.enabled).order_by(Journey.id)))
    for journey in journeys:
        if journey.trigger == "manual":
            continue
        try:
            found = _triggered(db_session, settings, journey, now)
        except (KeepwellError, ImportError):
            continue  # segments not installed or event store unreadable: try next run
        enrolled = _already_enrolled(db_session, journey, [cid for cid, _ in found])
        for customer_id, reason in found:
            if customer_id in enrolled:
                continue
            enrolled.add(customer_id)
            if dry_run:
                report.enrolled.append((journey.name, customer_id, reason))
                continue
            if enrol(
                db_session=db_session,
                journey=journey,
                customer_id=customer_id,
                reason=reason,
                now=now,
            ):
                report.enrolled.append((journey.name, customer_id, reason))
        if not dry_run:
            journey.checked_until = now
            db_session.flush()
    by_id = {j.id: j for j in journeys}
    due = db_session.scalars(
        select(JourneyEnrollment)
        .where(
            JourneyEnrollment.status == "active",
            JourneyEnrollment.due_at <= now,
            JourneyEnrollment.journey_id.in_(list(by_id) or [-1]),
        )
        .order_by(JourneyEnrollment.due_at, JourneyEnrollment.id)
    ).all()
    for enrollment in due:
        _advance_one(
            db_session, settings, by_id[enrollment.journey_id], enrollment, now, dry_run, report
        )
    return report
