"""Daily-work pages: my tasks and the alerts inbox, the segment builder, the deal board."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from keepwell.customers.models import Customer
from keepwell.errors import KeepwellError
from keepwell.models import utcnow
from keepwell.users import service as users_service
from keepwell.web.auth import DbSession, PageUser, login_redirect_target
from keepwell.web.pages.common import WriteUser, flash, redirect, render

router = APIRouter()

FILTER_MAX = 20_000


# -- tasks and alerts ---------------------------------------------------------------------------


@router.get("/tasks", response_class=HTMLResponse)
def my_tasks(
    request: Request,
    who: PageUser,
    db_session: DbSession,
    show: Literal["mine", "overdue", "all_open", "done"] = "mine",
) -> HTMLResponse:
    from keepwell.automation.models import AlertFiring, AlertRule
    from keepwell.tasks import service as tasks_service

    now = utcnow()
    if show == "mine":
        tasks = tasks_service.my_tasks(db_session=db_session, owner_id=who.user.id, limit=200)
    elif show == "overdue":
        tasks = tasks_service.list_tasks(db_session=db_session, overdue=True, limit=200)
    elif show == "done":
        tasks = tasks_service.list_tasks(
            db_session=db_session, owner_id=who.user.id, status="done", limit=200
        )
    else:
        tasks = [
            t
            for status in tasks_service.OPEN_STATUSES
            for t in tasks_service.list_tasks(db_session=db_session, status=status, limit=200)
        ]
    customers = {
        c.id: c
        for c in db_session.scalars(
            select(Customer).where(Customer.id.in_({t.customer_id for t in tasks}))
        )
    }
    firings = db_session.execute(
        select(AlertFiring, AlertRule.name, Customer)
        .join(AlertRule, AlertRule.id == AlertFiring.rule_id)
        .join(Customer, Customer.id == AlertFiring.customer_id)
        .order_by(AlertFiring.fired_at.desc(), AlertFiring.id.desc())
        .limit(50)
    ).all()
    return render(
        request,
        who,
        "pages/tasks.html",
        show=show,
        tasks=tasks,
        customers=customers,
        overdue={t.id for t in tasks if tasks_service.is_overdue(t, at=now)},
        open_statuses={s.value for s in tasks_service.OPEN_STATUSES},
        firings=firings,
    )


@router.post("/tasks/{task_id}/{action}")
def task_action(
    request: Request,
    task_id: int,
    action: Literal["complete", "reopen", "cancel"],
    who: WriteUser,
    db_session: DbSession,
    back: Annotated[str, Form(max_length=4000)] = "/tasks",
) -> Response:
    from keepwell.tasks import service as tasks_service

    act = {
        "complete": tasks_service.complete_task,
        "reopen": tasks_service.reopen_task,
        "cancel": tasks_service.cancel_task,
    }[action]
    try:
        task = act(db_session=db_session, task_id=task_id, actor_id=who.user.id)
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
    else:
        flash(request, f"Task {task.title!r}: {task.status.value}")
    return redirect(login_redirect_target(back))


# -- segments -------------------------------------------------------------------------------


def _check_filter(db_session, text: str) -> dict:
    """{"count": n} for a valid filter, else {"error", "line", "column"}."""
    from keepwell.segments import service as segments_service

    if not text.strip():
        return {"error": 'write a filter, e.g. industry = "travel" and mrr >= 100'}
    if len(text) > FILTER_MAX:
        return {"error": f"the filter is longer than {FILTER_MAX:,} characters"}
    try:
        return {"count": segments_service.count_filter(db_session=db_session, filter_text=text)}
    except KeepwellError as exc:
        return {
            "error": exc.message,
            "line": getattr(exc, "line", None),
            "column": getattr(exc, "column", None),
        }


def _pointer(text: str, line: int | None, column: int | None) -> str | None:
    """The offending line of ``text`` with a caret under ``column``."""
    if not line or not column:
        return None
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    return lines[line - 1] + "\n" + " " * (column - 1) + "^"


def _segments_page(
    request: Request,
    who,
    db_session,
    *,
    text: str = "",
    name: str = "",
    description: str = "",
    result: dict | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    from keepwell.segments import fields as segment_fields
    from keepwell.segments import service as segments_service

    segments = segments_service.list_segments(db_session=db_session)
    return render(
        request,
        who,
        "pages/segments.html",
        status_code=status_code,
        segments=segments,
        counts={
            seg.id: segments_service.count(db_session=db_session, segment=seg) for seg in segments
        },
        fields=segment_fields.catalogue(),
        text=text,
        name=name,
        description=description,
        result=result,
        pointer=_pointer(text, (result or {}).get("line"), (result or {}).get("column")),
    )


@router.get("/segments", response_class=HTMLResponse)
def segments_page(
    request: Request,
    who: PageUser,
    db_session: DbSession,
    filter: Annotated[str, Query(max_length=FILTER_MAX)] = "",
) -> HTMLResponse:
    """The builder; ``?filter=...`` counts it (the no-script way to get the live count)."""
    result = _check_filter(db_session, filter) if filter else None
    return _segments_page(request, who, db_session, text=filter, result=result)


@router.get("/segments/count")
def segment_count(
    who: PageUser,
    db_session: DbSession,
    filter: Annotated[str, Query(max_length=FILTER_MAX)] = "",
) -> JSONResponse:
    """The builder's live count: ``{"count": n}`` or ``{"error", "line", "column"}``."""
    return JSONResponse(_check_filter(db_session, filter))


@router.post("/segments", response_class=HTMLResponse)
def save_segment(
    request: Request,
    who: WriteUser,
    db_session: DbSession,
    name: Annotated[str, Form(max_length=1000)] = "",
    filter: Annotated[str, Form(max_length=FILTER_MAX)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    from keepwell.segments import service as segments_service

    try:
        segment = segments_service.create_segment(
            db_session=db_session,
            name=name,
            filter_text=filter,
            description=description or None,
            created_by=who.user.id,
        )
    except KeepwellError as exc:
        result = {
            "error": exc.message,
            "line": getattr(exc, "line", None),
            "column": getattr(exc, "column", None),
        }
        return _segments_page(
            request,
            who,
            db_session,
            text=filter,
            name=name,
            description=description,
            result=result,
            status_code=422,
        )
    flash(request, f"Segment {segment.name!r} saved")
    return redirect(f"/customers?segment={segment.id}")


@router.post("/segments/{segment_id}/delete")
def delete_segment(
    request: Request, segment_id: int, who: WriteUser, db_session: DbSession
) -> Response:
    from keepwell.segments import service as segments_service

    try:
        segment = segments_service.get_segment(db_session=db_session, name_or_id=segment_id)
        segments_service.delete_segment(db_session=db_session, segment=segment)
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
    else:
        flash(request, f"Segment {segment.name!r} deleted")
    return redirect("/segments")


# -- deals ----------------------------------------------------------------------------------


@router.get("/deals", response_class=HTMLResponse)
def deal_board(request: Request, who: PageUser, db_session: DbSession) -> HTMLResponse:
    from keepwell.deals import service as deals_service

    stages = deals_service.list_stages(db_session=db_session)
    deals = deals_service.list_deals(db_session=db_session, limit=2000)
    customers = {
        c.id: c
        for c in db_session.scalars(
            select(Customer).where(Customer.id.in_({d.customer_id for d in deals}))
        )
    }
    owners = {u.id: u for u in users_service.get_all(db_session=db_session)}
    columns = [(s, [d for d in deals if d.stage_id == s.id]) for s in stages]
    return render(
        request,
        who,
        "pages/deals.html",
        columns=columns,
        stages=stages,
        customers=customers,
        owners=owners,
    )


@router.post("/deals/{deal_id}/move")
def move_deal(
    request: Request,
    deal_id: int,
    who: WriteUser,
    db_session: DbSession,
    stage: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    from keepwell.deals import service as deals_service

    try:
        deal = deals_service.move_deal(
            db_session=db_session,
            deal_id=deal_id,
            stage=stage,
            reason=reason or None,
            actor_id=who.user.id,
        )
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
    else:
        flash(request, f"Deal {deal.title!r} moved to {deal.stage.name}")
    return redirect("/deals")
