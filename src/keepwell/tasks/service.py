"""Task service: create, change, complete and list tasks. Every change goes on the timeline.

A task without an owner is offered to the assignment rules (:mod:`keepwell.tasks.assignment`)
when it is created. Services flush; the caller commits.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Select, case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.errors import InvalidInput, NotFound
from keepwell.models import apply_changes, utcnow
from keepwell.tasks.models import Task, TaskPriority, TaskStatus
from keepwell.tasks.staff import get_staff_or_raise, label
from keepwell.timeline import service as timeline
from keepwell.users.models import StaffUser


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Any = _Unset.UNSET
"""Default of the ``update_*`` arguments: leave the field as it is (``None`` clears it)."""

OPEN_STATUSES = (TaskStatus.open, TaskStatus.in_progress)
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
_SOURCE = re.compile(r"^(manual|rule:[A-Za-z0-9_.-]+|journey:[A-Za-z0-9_.-]+)$")
TITLE_MAX = 255
DEDUP_MAX = 255


def parse_due(value: datetime | date | str | None, *, field: str = "due_at") -> datetime | None:
    """A due date as an aware UTC datetime.

    Accepts an aware datetime, a date or ``YYYY-MM-DD`` (due at the end of that day, UTC), or
    an ISO 8601 date-time with an offset. Naive date-times and other text raise InvalidInput.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"{text!r} is not a date",
                field=field,
                expected="YYYY-MM-DD or an ISO 8601 date-time with a time zone",
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(
                f"{value.isoformat()} has no time zone",
                field=field,
                expected="a date-time with an offset such as +00:00",
            )
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(23, 59, 59), tzinfo=UTC)
    raise InvalidInput(f"{value!r} is not a date", field=field, expected="a date or datetime")


def _priority(value: TaskPriority | str) -> TaskPriority:
    try:
        return TaskPriority(value)
    except ValueError:
        raise InvalidInput(
            f"unknown priority {value!r}", field="priority", expected="low, normal, high or urgent"
        ) from None


def _status(value: TaskStatus | str) -> TaskStatus:
    try:
        return TaskStatus(value)
    except ValueError:
        raise InvalidInput(
            f"unknown status {value!r}",
            field="status",
            expected=", ".join(s.value for s in TaskStatus),
        ) from None


def _title(value: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput("a task needs a title", field="title", expected="non-empty text")
    if len(text) > TITLE_MAX:
        raise InvalidInput(
            f"title is {len(text)} characters long", field="title", expected=f"at most {TITLE_MAX}"
        )
    return text


def _customer_exists(db_session: Session, customer_id: int) -> None:
    query = select(Customer.id).where(Customer.id == customer_id)
    if isinstance(customer_id, bool) or db_session.scalar(query) is None:
        raise NotFound(f"no customer with id {customer_id}")


def _owner_label(db_session: Session, task: Task) -> str:
    return label(db_session.get(StaffUser, task.owner_id) if task.owner_id else None)


def _detail(task: Task, **extra: Any) -> dict[str, Any]:
    return {"task_id": task.id, "status": task.status.value, **extra}


def _record(db_session: Session, task: Task, title: str, actor_id: int | None, **extra) -> None:
    timeline.record(
        db_session=db_session,
        customer_id=task.customer_id,
        kind="task",
        title=title,
        detail=_detail(task, **extra),
        actor_id=actor_id,
    )


def get(*, db_session: Session, task_id: int) -> Task | None:
    """The task with this id, or None."""
    return db_session.get(Task, task_id)


def get_or_raise(*, db_session: Session, task_id: int) -> Task:
    """The task with this id; :class:`NotFound` when there is none."""
    task = get(db_session=db_session, task_id=task_id)
    if task is None:
        raise NotFound(f"no task with id {task_id}", hint="see `keepwell tasks list`")
    return task


def get_by_dedup_key(*, db_session: Session, dedup_key: str) -> Task | None:
    """The task created with this dedup key, or None."""
    return db_session.scalars(select(Task).where(Task.dedup_key == dedup_key)).first()


def create_task(
    *,
    db_session: Session,
    customer_id: int,
    title: str,
    description: str | None = None,
    owner_id: int | None = None,
    due_at: datetime | date | str | None = None,
    priority: TaskPriority | str = "normal",
    source: str = "manual",
    dedup_key: str | None = None,
) -> Task:
    """Create a task about a customer and put it on the customer's timeline.

    With a ``dedup_key`` that is already used, returns that task and creates nothing (so
    automation can create a task at most once per occurrence). Without ``owner_id`` the
    assignment rules pick one (the task stays unowned when none matches).
    """
    if dedup_key is not None:
        if not dedup_key.strip() or len(dedup_key) > DEDUP_MAX:
            raise InvalidInput("dedup key must be 1-255 characters", field="dedup_key")
        existing = get_by_dedup_key(db_session=db_session, dedup_key=dedup_key)
        if existing is not None:
            return existing
    clean_title = _title(title)
    level = _priority(priority)
    due = parse_due(due_at)
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise InvalidInput(
            f"unknown source {source!r}",
            field="source",
            expected="manual, rule:<id> or journey:<id>",
        )
    _customer_exists(db_session, customer_id)
    if owner_id is not None:
        get_staff_or_raise(db_session=db_session, staff_id=owner_id)
    task = Task(
        customer_id=customer_id,
        title=clean_title,
        description=(description or "").strip() or None,
        owner_id=owner_id,
        due_at=due,
        priority=level,
        status=TaskStatus.open,
        source=source,
        dedup_key=dedup_key,
    )
    try:
        with db_session.begin_nested():
            db_session.add(task)
            db_session.flush()
    except IntegrityError:
        if dedup_key is not None:  # created meanwhile by another process
            existing = get_by_dedup_key(db_session=db_session, dedup_key=dedup_key)
            if existing is not None:
                return existing
        raise
    if owner_id is None:
        from keepwell.tasks import assignment

        assignment.assign_task_by_rules(db_session=db_session, task=task)
    owner = f" for {_owner_label(db_session, task)}" if task.owner_id is not None else ""
    _record(
        db_session,
        task,
        f"Task created{owner}: {task.title}",
        None,
        priority=task.priority.value,
        owner_id=task.owner_id,
        due_at=task.due_at.isoformat() if task.due_at else None,
        source=task.source,
    )
    return task


def update_task(
    *,
    db_session: Session,
    task_id: int,
    title: str = UNSET,
    description: str | None = UNSET,
    due_at: datetime | date | str | None = UNSET,
    priority: TaskPriority | str = UNSET,
    status: TaskStatus | str = UNSET,
    actor_id: int | None = None,
) -> Task:
    """Change a task's fields (only those given; ``None`` clears description / due date).

    ``status`` may move between ``open`` and ``in_progress`` here; use :func:`complete_task`,
    :func:`cancel_task` and :func:`reopen_task` to close or reopen.
    """
    task = get_or_raise(db_session=db_session, task_id=task_id)
    new: dict[str, Any] = {}
    if title is not UNSET:
        new["title"] = _title(title)
    if description is not UNSET:
        new["description"] = (description or "").strip() or None
    if due_at is not UNSET:
        new["due_at"] = parse_due(due_at)
    if priority is not UNSET:
        new["priority"] = _priority(priority)
    if status is not UNSET:
        target = _status(status)
        if target not in OPEN_STATUSES or task.status not in OPEN_STATUSES:
            raise InvalidInput(
                f"cannot set status {target.value} on a {task.status.value} task here",
                field="status",
                expected="open or in_progress on an open task (use complete/cancel/reopen)",
            )
        new["status"] = target
    changes = apply_changes(task, new)
    if changes:
        db_session.flush()
        _record(db_session, task, f"Task updated: {task.title}", actor_id, changes=changes)
    return task


def _close(db_session: Session, task_id: int, status: TaskStatus, actor_id, at) -> Task:
    task = get_or_raise(db_session=db_session, task_id=task_id)
    if task.status not in OPEN_STATUSES:
        raise InvalidInput(
            f"task {task.id} is already {task.status.value}",
            field="status",
            expected="an open or in-progress task",
        )
    task.status = status
    task.completed_at = (at or utcnow()) if status is TaskStatus.done else None
    db_session.flush()
    word = "done" if status is TaskStatus.done else "cancelled"
    _record(db_session, task, f"Task {word}: {task.title}", actor_id)
    return task


def complete_task(
    *, db_session: Session, task_id: int, actor_id: int | None = None, at: datetime | None = None
) -> Task:
    """Mark an open task done (``completed_at`` = ``at``, default now)."""
    return _close(db_session, task_id, TaskStatus.done, actor_id, at)


def cancel_task(*, db_session: Session, task_id: int, actor_id: int | None = None) -> Task:
    """Cancel an open task."""
    return _close(db_session, task_id, TaskStatus.cancelled, actor_id, None)


def reopen_task(*, db_session: Session, task_id: int, actor_id: int | None = None) -> Task:
    """Reopen a done or cancelled task."""
    task = get_or_raise(db_session=db_session, task_id=task_id)
    if task.status in OPEN_STATUSES:
        raise InvalidInput(
            f"task {task.id} is still {task.status.value}",
            field="status",
            expected="a done or cancelled task",
        )
    task.status = TaskStatus.open
    task.completed_at = None
    db_session.flush()
    _record(db_session, task, f"Task reopened: {task.title}", actor_id)
    return task


def assign_task(
    *, db_session: Session, task_id: int, owner_id: int | None, actor_id: int | None = None
) -> Task:
    """Give a task to a staff user (``None`` leaves it unowned)."""
    task = get_or_raise(db_session=db_session, task_id=task_id)
    if owner_id is not None:
        get_staff_or_raise(db_session=db_session, staff_id=owner_id)
    if task.owner_id == owner_id:
        return task
    previous = task.owner_id
    task.owner_id = owner_id
    task.assignment_rule_id = None
    db_session.flush()
    _record(
        db_session,
        task,
        f"Task assigned to {_owner_label(db_session, task)}: {task.title}",
        actor_id,
        owner_id=owner_id,
        previous_owner_id=previous,
    )
    return task


def _overdue(at: datetime):
    return Task.status.in_(OPEN_STATUSES) & (Task.due_at.is_not(None)) & (Task.due_at < at)


def _priority_order():
    return case(PRIORITY_RANK, value=Task.priority, else_=len(PRIORITY_RANK))


def _page(limit: int, offset: int) -> None:
    if limit < 1 or limit > 10_000 or offset < 0:
        raise InvalidInput("limit must be 1-10000 and offset >= 0", field="limit")


def tasks_query(
    *,
    owner_id: int | None = None,
    status: TaskStatus | str | None = None,
    customer_id: int | None = None,
    overdue: bool | None = None,
    due_before: datetime | date | str | None = None,
    at: datetime | None = None,
) -> Select:
    """The SELECT behind :func:`list_tasks` (filters only, no order or page)."""
    query = select(Task)
    if owner_id is not None:
        query = query.where(Task.owner_id == owner_id)
    if status is not None:
        query = query.where(Task.status == _status(status))
    if customer_id is not None:
        query = query.where(Task.customer_id == customer_id)
    if overdue is not None:
        cond = _overdue(at or utcnow())
        query = query.where(cond if overdue else ~cond)
    if due_before is not None:
        query = query.where(Task.due_at < parse_due(due_before, field="due_before"))
    return query


def list_tasks(
    *,
    db_session: Session,
    owner_id: int | None = None,
    status: TaskStatus | str | None = None,
    customer_id: int | None = None,
    overdue: bool | None = None,
    limit: int = 100,
    offset: int = 0,
    due_before: datetime | date | str | None = None,
    at: datetime | None = None,
) -> list[Task]:
    """Tasks matching every given filter, soonest due first (undated last), then by priority.

    ``overdue=True``: open or in progress with ``due_at`` before ``at`` (default now);
    ``overdue=False``: all others. ``due_before``: due strictly before that time (a date means
    the end of that day, UTC).
    """
    _page(limit, offset)
    query = tasks_query(
        owner_id=owner_id,
        status=status,
        customer_id=customer_id,
        overdue=overdue,
        due_before=due_before,
        at=at,
    )
    order = (Task.due_at.is_(None), Task.due_at, _priority_order(), Task.id)
    return list(db_session.scalars(query.order_by(*order).limit(limit).offset(offset)))


def my_tasks(
    *, db_session: Session, owner_id: int, include_closed: bool = False, limit: int = 100
) -> list[Task]:
    """A staff user's work list: open and in-progress tasks, soonest due first, then priority."""
    get_staff_or_raise(db_session=db_session, staff_id=owner_id)
    _page(limit, 0)
    query = select(Task).where(Task.owner_id == owner_id)
    if not include_closed:
        query = query.where(Task.status.in_(OPEN_STATUSES))
    order = (Task.due_at.is_(None), Task.due_at, _priority_order(), Task.id)
    return list(db_session.scalars(query.order_by(*order).limit(limit)))


def is_overdue(task: Task, *, at: datetime | None = None) -> bool:
    """Whether an open task's due time has passed."""
    return (
        task.status in OPEN_STATUSES and task.due_at is not None and task.due_at < (at or utcnow())
    )


def unowned_open_tasks(*, db_session: Session, limit: int = 10_000) -> list[Task]:
    """Open tasks nobody owns, oldest first (what rule-based assignment works through)."""
    query = select(Task).where(Task.owner_id.is_(None), Task.status.in_(OPEN_STATUSES))
    return list(db_session.scalars(query.order_by(Task.id).limit(limit)))


__all__ = [
    "UNSET",
    "assign_task",
    "cancel_task",
    "complete_task",
    "create_task",
    "get",
    "get_by_dedup_key",
    "get_or_raise",
    "is_overdue",
    "list_tasks",
    "my_tasks",
    "parse_due",
    "reopen_task",
    "update_task",
]
