"""Tasks: validation, dedup, status changes, filters, "my tasks" order and the timeline."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.errors import InvalidInput, NotFound
from keepwell.tasks import service
from keepwell.tasks.models import Task, TaskPriority, TaskStatus
from keepwell.timeline import service as timeline
from tests.factories import at, make_customer
from tests.tasks.helpers import make_staff


def _count(db_session: Session) -> int:
    return db_session.scalar(select(func.count(Task.id)))


def test_create_task_with_every_field_and_timeline(db_session: Session) -> None:
    c = make_customer(db_session)
    ana = make_staff(db_session, "Ana")
    task = service.create_task(
        db_session=db_session,
        customer_id=c.id,
        title="  Call about renewal  ",
        description="ask about seats",
        owner_id=ana.id,
        due_at="2026-05-01",
        priority="high",
    )
    assert task.title == "Call about renewal"
    assert task.owner_id == ana.id
    assert task.due_at == at(2026, 5, 1, 23, 59, 59)  # a date is due at the end of the day
    assert task.priority is TaskPriority.high and task.status is TaskStatus.open
    assert task.source == "manual" and task.dedup_key is None
    items = timeline.for_customer(db_session=db_session, customer_id=c.id)
    assert [i.title for i in items] == ["Task created for Ana: Call about renewal"]
    assert items[0].kind == "task" and items[0].detail["task_id"] == task.id
    assert items[0].detail["due_at"] == "2026-05-01T23:59:59+00:00"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"title": ""}, "field 'title': a task needs a title"),
        ({"title": "   "}, "field 'title': a task needs a title"),
        ({"title": "x" * 256}, "field 'title': title is 256 characters long"),
        ({"priority": "asap"}, "field 'priority': unknown priority 'asap'"),
        ({"due_at": "01/05/2026"}, "field 'due_at': '01/05/2026' is not a date"),
        ({"due_at": "2026-13-01"}, "field 'due_at': '2026-13-01' is not a date"),
        ({"due_at": "2026-05-01T10:00"}, "field 'due_at': 2026-05-01T10:00:00 has no time zone"),
        ({"due_at": datetime(2026, 5, 1)}, "has no time zone"),
        ({"source": "cron"}, "field 'source': unknown source 'cron'"),
        ({"source": "rule:"}, "unknown source"),
        ({"dedup_key": ""}, "field 'dedup_key'"),
    ],
)
def test_create_task_rejects_bad_input(db_session: Session, kwargs: dict, message: str) -> None:
    c = make_customer(db_session)
    args = {"db_session": db_session, "customer_id": c.id, "title": "Call"} | kwargs
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        service.create_task(**args)
    assert _count(db_session) == 0


def test_create_task_unknown_customer_and_owner(db_session: Session) -> None:
    c = make_customer(db_session)
    with pytest.raises(NotFound, match="no customer with id 999999"):
        service.create_task(db_session=db_session, customer_id=999_999, title="x")
    with pytest.raises(NotFound, match="no staff user with id 424242"):
        service.create_task(db_session=db_session, customer_id=c.id, title="x", owner_id=424242)
    gone = make_staff(db_session, "Gone", is_active=False)
    with pytest.raises(InvalidInput, match="deactivated"):
        service.create_task(db_session=db_session, customer_id=c.id, title="x", owner_id=gone.id)
    assert _count(db_session) == 0


def test_due_at_with_offset_is_stored_in_utc(db_session: Session) -> None:
    c = make_customer(db_session)
    task = service.create_task(
        db_session=db_session, customer_id=c.id, title="x", due_at="2026-05-01T10:00:00+02:00"
    )
    assert task.due_at == at(2026, 5, 1, 8)
    berlin = datetime(2026, 5, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    other = service.create_task(db_session=db_session, customer_id=c.id, title="y", due_at=berlin)
    assert other.due_at == at(2026, 5, 1, 8)
    third = service.create_task(
        db_session=db_session, customer_id=c.id, title="z", due_at=date(2026, 5, 2)
    )
    assert third.due_at == at(2026, 5, 2, 23, 59, 59)


def test_dedup_key_creates_once(db_session: Session) -> None:
    c = make_customer(db_session)
    first = service.create_task(
        db_session=db_session,
        customer_id=c.id,
        title="Usage fell",
        source="rule:7",
        dedup_key="rule:7:cus:1:2026-05",
    )
    again = service.create_task(
        db_session=db_session,
        customer_id=c.id,
        title="Usage fell (again)",
        source="rule:7",
        dedup_key="rule:7:cus:1:2026-05",
    )
    assert again.id == first.id and again.title == "Usage fell"
    other = service.create_task(
        db_session=db_session,
        customer_id=c.id,
        title="Usage fell",
        source="rule:7",
        dedup_key="rule:7:cus:1:2026-06",
    )
    assert other.id != first.id
    assert _count(db_session) == 2
    entries = timeline.for_customer(db_session=db_session, customer_id=c.id)
    assert len(entries) == 2  # the duplicate call wrote nothing


def test_status_changes_and_timeline(db_session: Session) -> None:
    c = make_customer(db_session)
    task = service.create_task(db_session=db_session, customer_id=c.id, title="Onboard")
    service.update_task(
        db_session=db_session,
        task_id=task.id,
        status="in_progress",
        priority="urgent",
        due_at="2026-06-01",
    )
    assert task.status is TaskStatus.in_progress and task.priority is TaskPriority.urgent
    service.complete_task(db_session=db_session, task_id=task.id, at=at(2026, 5, 3))
    assert task.status is TaskStatus.done and task.completed_at == at(2026, 5, 3)
    with pytest.raises(InvalidInput, match="already done"):
        service.complete_task(db_session=db_session, task_id=task.id)
    with pytest.raises(InvalidInput, match="already done"):
        service.cancel_task(db_session=db_session, task_id=task.id)
    with pytest.raises(InvalidInput, match="cannot set status open on a done task"):
        service.update_task(db_session=db_session, task_id=task.id, status="open")
    service.reopen_task(db_session=db_session, task_id=task.id)
    assert task.status is TaskStatus.open and task.completed_at is None
    with pytest.raises(InvalidInput, match="still open"):
        service.reopen_task(db_session=db_session, task_id=task.id)
    service.cancel_task(db_session=db_session, task_id=task.id)
    assert task.status is TaskStatus.cancelled
    with pytest.raises(InvalidInput, match="cannot set status done"):
        service.update_task(db_session=db_session, task_id=task.id, status="done")
    with pytest.raises(InvalidInput, match="unknown status 'finished'"):
        service.update_task(db_session=db_session, task_id=task.id, status="finished")
    with pytest.raises(NotFound, match="no task with id 987654"):
        service.complete_task(db_session=db_session, task_id=987654)
    titles = [i.title for i in timeline.for_customer(db_session=db_session, customer_id=c.id)]
    assert sorted(titles) == sorted(
        [
            "Task created: Onboard",
            "Task updated: Onboard",
            "Task done: Onboard",
            "Task reopened: Onboard",
            "Task cancelled: Onboard",
        ]
    )
    updated = next(
        i
        for i in timeline.for_customer(db_session=db_session, customer_id=c.id)
        if i.title.startswith("Task updated")
    )
    assert updated.detail["changes"] == {
        "status": ["open", "in_progress"],
        "priority": ["normal", "urgent"],
        "due_at": [None, "2026-06-01T23:59:59+00:00"],
    }


def test_update_without_changes_writes_nothing(db_session: Session) -> None:
    c = make_customer(db_session)
    task = service.create_task(db_session=db_session, customer_id=c.id, title="Same")
    service.update_task(db_session=db_session, task_id=task.id, title="Same", priority="normal")
    assert len(timeline.for_customer(db_session=db_session, customer_id=c.id)) == 1
    with pytest.raises(InvalidInput, match="field 'title'"):
        service.update_task(db_session=db_session, task_id=task.id, title="")
    assert task.title == "Same"


def test_assign_task_by_hand(db_session: Session) -> None:
    c = make_customer(db_session)
    bo = make_staff(db_session, "Bo")
    task = service.create_task(db_session=db_session, customer_id=c.id, title="Call")
    assert task.owner_id is None  # no rules: stays unowned
    service.assign_task(db_session=db_session, task_id=task.id, owner_id=bo.id)
    assert task.owner_id == bo.id
    with pytest.raises(NotFound):
        service.assign_task(db_session=db_session, task_id=task.id, owner_id=555_555)
    assert task.owner_id == bo.id
    titles = [i.title for i in timeline.for_customer(db_session=db_session, customer_id=c.id)]
    assert "Task assigned to Bo: Call" in titles


def test_list_filters_and_overdue(db_session: Session) -> None:
    a, b = make_customer(db_session), make_customer(db_session)
    ana, bo = make_staff(db_session, "Ana"), make_staff(db_session, "Bo")
    now = at(2026, 5, 10, 12)

    def mk(title, customer, owner, due, **kw):
        return service.create_task(
            db_session=db_session,
            customer_id=customer.id,
            title=title,
            owner_id=owner.id if owner else None,
            due_at=due,
            **kw,
        )

    late = mk("late", a, ana, at(2026, 5, 1))
    soon = mk("soon", a, ana, at(2026, 5, 20))
    undated = mk("undated", b, bo, None)
    late_done = mk("late but done", b, bo, at(2026, 5, 2))
    service.complete_task(db_session=db_session, task_id=late_done.id)

    def ids(**kw):
        return [t.title for t in service.list_tasks(db_session=db_session, at=now, **kw)]

    assert ids() == ["late", "late but done", "soon", "undated"]
    assert ids(owner_id=ana.id) == ["late", "soon"]
    assert ids(customer_id=b.id) == ["late but done", "undated"]
    assert ids(status="done") == ["late but done"]
    assert ids(overdue=True) == ["late"]
    assert ids(overdue=False) == ["late but done", "soon", "undated"]
    assert ids(due_before="2026-05-19") == ["late", "late but done"]
    assert ids(limit=2, offset=1) == ["late but done", "soon"]
    assert service.is_overdue(late, at=now) and not service.is_overdue(soon, at=now)
    assert not service.is_overdue(undated, at=now)
    with pytest.raises(InvalidInput, match="field 'due_before'"):
        ids(due_before="soon")
    with pytest.raises(InvalidInput, match="field 'status'"):
        ids(status="late")
    with pytest.raises(InvalidInput, match="field 'limit'"):
        ids(limit=0)


def test_my_tasks_sorted_by_due_then_priority(db_session: Session) -> None:
    c = make_customer(db_session)
    ana, bo = make_staff(db_session, "Ana"), make_staff(db_session, "Bo")
    day = at(2026, 5, 5)
    for title, due, prio in [
        ("no date, urgent", None, "urgent"),
        ("5th low", day, "low"),
        ("5th urgent", day, "urgent"),
        ("4th normal", at(2026, 5, 4), "normal"),
        ("5th high", day, "high"),
    ]:
        service.create_task(
            db_session=db_session,
            customer_id=c.id,
            title=title,
            owner_id=ana.id,
            due_at=due,
            priority=prio,
        )
    done = service.create_task(
        db_session=db_session,
        customer_id=c.id,
        title="done one",
        owner_id=ana.id,
        due_at=at(2026, 5, 1),
    )
    service.complete_task(db_session=db_session, task_id=done.id)
    service.create_task(db_session=db_session, customer_id=c.id, title="Bo's", owner_id=bo.id)
    mine = service.my_tasks(db_session=db_session, owner_id=ana.id)
    assert [t.title for t in mine] == [
        "4th normal",
        "5th urgent",
        "5th high",
        "5th low",
        "no date, urgent",
    ]
    everything = service.my_tasks(db_session=db_session, owner_id=ana.id, include_closed=True)
    assert everything[0].title == "done one"
    with pytest.raises(NotFound):
        service.my_tasks(db_session=db_session, owner_id=777_777)
