"""Thin routers over other domains' services: tasks, deals, segments, campaigns, alert rules.

Each route parses its input, maps external ids and staff e-mails to internal ids, calls one
service function and returns the row's columns as JSON. Alert rules are settings: changing
them needs the ``admin`` scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.encoders import jsonable_encoder
from pydantic import Field
from sqlalchemy import inspect as sa_inspect

from keepwell.errors import InvalidInput, NotFound
from keepwell.users import service as users_service
from keepwell.web.auth import Admin, DbSession, Reader, Writer
from keepwell.web.customer_edits import get_customer_or_raise
from keepwell.web.schemas import ApiModel

router = APIRouter()

Row = dict[str, Any]
RowId = Annotated[int, Path(ge=1, le=2**62)]
Name = Annotated[str, Path(min_length=1, max_length=120)]


def row(obj: Any, **extra: Any) -> Row:
    """The table columns of an ORM row (plus ``extra``), JSON-ready."""
    data = {c.key: getattr(obj, c.key) for c in sa_inspect(obj).mapper.column_attrs}
    data.update(extra)
    return jsonable_encoder(data)


def _staff_id(db_session, email: str | None) -> int | None:
    if email is None:
        return None
    user = users_service.get_by_email(db_session=db_session, email=email)
    if user is None:
        raise InvalidInput(f"no staff user {email!r}", field="owner_email")
    return user.id


def _customer_id(db_session, external_id: str | None, field: str = "customer_id") -> int | None:
    if external_id is None:
        return None
    try:
        return get_customer_or_raise(db_session=db_session, external_id=external_id).id
    except NotFound as exc:
        raise InvalidInput(exc.message, field=field) from None


# -- tasks ------------------------------------------------------------------------------------


class TaskIn(ApiModel):
    customer_id: str = Field(min_length=1, max_length=255, description="Customer external id.")
    title: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=100_000)
    owner_email: str | None = Field(default=None, max_length=320)
    due_at: datetime | None = None
    priority: str = Field(default="normal", max_length=16)


class TaskPatch(ApiModel):
    title: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=100_000)
    due_at: datetime | None = None
    priority: str | None = Field(default=None, max_length=16)
    status: str | None = Field(default=None, max_length=16)


@router.get("/tasks", response_model=list[Row], tags=["tasks"], summary="List tasks")
def list_tasks(
    db_session: DbSession,
    _: Reader,
    owner: Annotated[str | None, Query(max_length=320, description="Owner's e-mail.")] = None,
    status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    customer: Annotated[str | None, Query(max_length=255, description="External id.")] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[Row]:
    from keepwell.tasks import service

    tasks = service.list_tasks(
        db_session=db_session,
        owner_id=_staff_id(db_session, owner),
        status=status_,
        customer_id=_customer_id(db_session, customer, "customer"),
        overdue=overdue,
        limit=limit,
        offset=offset,
    )
    return [row(t) for t in tasks]


@router.post(
    "/tasks",
    response_model=Row,
    status_code=status.HTTP_201_CREATED,
    tags=["tasks"],
    summary="Create a task",
)
def create_task(body: TaskIn, db_session: DbSession, _: Writer) -> Row:
    from keepwell.tasks import service

    task = service.create_task(
        db_session=db_session,
        customer_id=_customer_id(db_session, body.customer_id),
        title=body.title,
        description=body.description,
        owner_id=_staff_id(db_session, body.owner_email),
        due_at=body.due_at,
        priority=body.priority,
    )
    return row(task)


@router.get("/tasks/{task_id}", response_model=Row, tags=["tasks"], summary="Get a task")
def get_task(task_id: RowId, db_session: DbSession, _: Reader) -> Row:
    from keepwell.tasks import service

    return row(service.get_or_raise(db_session=db_session, task_id=task_id))


@router.patch("/tasks/{task_id}", response_model=Row, tags=["tasks"], summary="Update a task")
def update_task(task_id: RowId, body: TaskPatch, db_session: DbSession, who: Writer) -> Row:
    from keepwell.tasks import service

    changes = body.model_dump(exclude_unset=True)
    for key in ("title", "priority", "status"):
        if key in changes and changes[key] is None:
            raise InvalidInput("must not be null", field=key)
    task = service.update_task(
        db_session=db_session, task_id=task_id, actor_id=who.user.id, **changes
    )
    return row(task)


@router.post(
    "/tasks/{task_id}/{action}", response_model=Row, tags=["tasks"], summary="Close or reopen"
)
def task_action(
    task_id: RowId,
    action: Annotated[str, Path(pattern="^(complete|cancel|reopen)$")],
    db_session: DbSession,
    who: Writer,
) -> Row:
    """``complete``, ``cancel`` or ``reopen`` a task."""
    from keepwell.tasks import service

    act = {
        "complete": service.complete_task,
        "cancel": service.cancel_task,
        "reopen": service.reopen_task,
    }[action]
    return row(act(db_session=db_session, task_id=task_id, actor_id=who.user.id))


# -- deals ------------------------------------------------------------------------------------


class DealIn(ApiModel):
    customer_id: str = Field(min_length=1, max_length=255, description="Customer external id.")
    title: str = Field(min_length=1, max_length=255)
    value_minor: int = Field(ge=0, le=10**15)
    currency: str = Field(min_length=3, max_length=3)
    kind: str = Field(default="upsell", max_length=16)
    stage: str | None = Field(default=None, max_length=120)
    owner_email: str | None = Field(default=None, max_length=320)
    expected_close_at: datetime | None = None


class DealPatch(ApiModel):
    title: str | None = Field(default=None, min_length=1, max_length=255)
    value_minor: int | None = Field(default=None, ge=0, le=10**15)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    kind: str | None = Field(default=None, max_length=16)
    owner_email: str | None = Field(default=None, max_length=320)
    expected_close_at: datetime | None = None


class DealMove(ApiModel):
    stage: str = Field(min_length=1, max_length=120)
    reason: str | None = Field(default=None, max_length=1000)


@router.get("/deal-stages", response_model=list[Row], tags=["deals"], summary="Pipeline stages")
def list_stages(db_session: DbSession, _: Reader) -> list[Row]:
    from keepwell.deals import service

    return [row(s) for s in service.list_stages(db_session=db_session)]


@router.get("/deals", response_model=list[Row], tags=["deals"], summary="List deals")
def list_deals(
    db_session: DbSession,
    _: Reader,
    stage: Annotated[str | None, Query(max_length=120)] = None,
    customer: Annotated[str | None, Query(max_length=255, description="External id.")] = None,
    kind: Annotated[str | None, Query(max_length=16)] = None,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[Row]:
    from keepwell.deals import service

    deals = service.list_deals(
        db_session=db_session,
        stage=stage,
        customer_id=_customer_id(db_session, customer, "customer"),
        kind=kind,
        open_only=open_only,
        limit=limit,
        offset=offset,
    )
    return [row(d, stage=d.stage.name) for d in deals]


@router.post(
    "/deals",
    response_model=Row,
    status_code=status.HTTP_201_CREATED,
    tags=["deals"],
    summary="Create a deal",
)
def create_deal(body: DealIn, db_session: DbSession, who: Writer) -> Row:
    from keepwell.deals import service

    deal = service.create_deal(
        db_session=db_session,
        customer_id=_customer_id(db_session, body.customer_id),
        title=body.title,
        value_minor=body.value_minor,
        currency=body.currency,
        kind=body.kind,
        stage=body.stage,
        owner_id=_staff_id(db_session, body.owner_email),
        expected_close_at=body.expected_close_at,
        actor_id=who.user.id,
    )
    return row(deal, stage=deal.stage.name)


@router.get("/deals/{deal_id}", response_model=Row, tags=["deals"], summary="Get a deal")
def get_deal(deal_id: RowId, db_session: DbSession, _: Reader) -> Row:
    from keepwell.deals import service

    deal = service.get_or_raise(db_session=db_session, deal_id=deal_id)
    return row(deal, stage=deal.stage.name)


@router.patch("/deals/{deal_id}", response_model=Row, tags=["deals"], summary="Update a deal")
def update_deal(deal_id: RowId, body: DealPatch, db_session: DbSession, who: Writer) -> Row:
    from keepwell.deals import service

    changes = body.model_dump(exclude_unset=True)
    for key in ("title", "value_minor", "currency", "kind"):
        if key in changes and changes[key] is None:
            raise InvalidInput("must not be null", field=key)
    if "owner_email" in changes:
        changes["owner_id"] = _staff_id(db_session, changes.pop("owner_email"))
    deal = service.update_deal(
        db_session=db_session, deal_id=deal_id, actor_id=who.user.id, **changes
    )
    return row(deal, stage=deal.stage.name)


@router.post("/deals/{deal_id}/move", response_model=Row, tags=["deals"], summary="Move to a stage")
def move_deal(deal_id: RowId, body: DealMove, db_session: DbSession, who: Writer) -> Row:
    from keepwell.deals import service

    deal = service.move_deal(
        db_session=db_session,
        deal_id=deal_id,
        stage=body.stage,
        reason=body.reason,
        actor_id=who.user.id,
    )
    return row(deal, stage=deal.stage.name)


# -- segments ---------------------------------------------------------------------------------


class SegmentIn(ApiModel):
    name: str = Field(min_length=1, max_length=120)
    filter: str | None = Field(default=None, max_length=20_000)
    description: str | None = Field(default=None, max_length=2000)
    kind: str = Field(default="dynamic", max_length=16)


class FilterIn(ApiModel):
    filter: str = Field(min_length=1, max_length=20_000)


@router.get("/segments", response_model=list[Row], tags=["segments"], summary="List segments")
def list_segments(db_session: DbSession, _: Reader) -> list[Row]:
    from keepwell.segments import service

    return [row(s) for s in service.list_segments(db_session=db_session)]


@router.post(
    "/segments",
    response_model=Row,
    status_code=status.HTTP_201_CREATED,
    tags=["segments"],
    summary="Save a segment",
)
def create_segment(body: SegmentIn, db_session: DbSession, who: Writer) -> Row:
    from keepwell.segments import service

    segment = service.create_segment(
        db_session=db_session,
        name=body.name,
        filter_text=body.filter,
        description=body.description,
        kind=body.kind,
        created_by=who.user.id,
    )
    return row(segment)


@router.post(
    "/segments/preview", response_model=Row, tags=["segments"], summary="Count a filter's matches"
)
def preview_segment(body: FilterIn, db_session: DbSession, _: Reader) -> Row:
    """How many customers a filter matches now (the segment builder's live count)."""
    from keepwell.segments import service

    return {"count": service.count_filter(db_session=db_session, filter_text=body.filter)}


@router.get("/segments/{name}", response_model=Row, tags=["segments"], summary="Get a segment")
def get_segment(name: Name, db_session: DbSession, _: Reader) -> Row:
    from keepwell.segments import service

    segment = service.get_segment(db_session=db_session, name_or_id=name)
    return row(segment, count=service.count(db_session=db_session, segment=segment))


@router.get("/segments/{name}/members", response_model=Row, tags=["segments"], summary="Members")
def segment_members(
    name: Name,
    db_session: DbSession,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 25,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Row:
    from keepwell.segments import service

    segment = service.get_segment(db_session=db_session, name_or_id=name)
    page = service.members(db_session=db_session, segment=segment, limit=limit, offset=offset)
    return {
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
        "items": [{"id": c.id, "external_id": c.external_id, "name": c.name} for c in page.rows],
    }


@router.delete(
    "/segments/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["segments"],
    summary="Delete a segment",
)
def delete_segment(name: Name, db_session: DbSession, _: Writer) -> Response:
    from keepwell.segments import service

    segment = service.get_segment(db_session=db_session, name_or_id=name)
    service.delete_segment(db_session=db_session, segment=segment)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- campaigns --------------------------------------------------------------------------------


@router.get("/campaigns", response_model=list[Row], tags=["campaigns"], summary="Campaigns")
def list_campaigns(db_session: DbSession, _: Reader) -> list[Row]:
    from keepwell.campaigns import service

    return [row(c) for c in service.list_campaigns(db_session=db_session)]


@router.get("/campaigns/{name}", response_model=Row, tags=["campaigns"], summary="Get a campaign")
def get_campaign(name: Name, db_session: DbSession, _: Reader) -> Row:
    from keepwell.campaigns import service

    campaign = service.get_campaign(db_session=db_session, name_or_id=name)
    return row(campaign, variants=[row(v) for v in campaign.variants])


@router.get(
    "/email-templates", response_model=list[Row], tags=["campaigns"], summary="E-mail templates"
)
def list_templates(db_session: DbSession, _: Reader) -> list[Row]:
    from keepwell.campaigns import service

    return [row(t) for t in service.list_templates(db_session=db_session)]


# -- alert rules ------------------------------------------------------------------------------


def _rule(db_session, name: str):
    from keepwell.automation import service

    return service.get_rule_or_raise(db_session=db_session, name_or_id=name)


def _rule_row(rule: Any) -> Row:
    """An alert rule's columns with webhook secrets masked (readers must not see them)."""
    from keepwell.automation import service

    return row(rule, **service.definition(rule, mask_secrets=True))


@router.get("/alert-rules", response_model=list[Row], tags=["alert rules"], summary="List")
def list_rules(db_session: DbSession, _: Reader) -> list[Row]:
    from keepwell.automation import service

    return [_rule_row(r) for r in service.list_rules(db_session=db_session)]


@router.post(
    "/alert-rules",
    response_model=Row,
    status_code=status.HTTP_201_CREATED,
    tags=["alert rules"],
    summary="Create an alert rule",
)
def create_rule(definition: dict[str, Any], db_session: DbSession, who: Admin) -> Row:
    """A rule definition as in ``keepwell rules create`` (name, trigger, audience, actions)."""
    from keepwell.automation import service

    return _rule_row(
        service.create_rule(db_session=db_session, definition=definition, created_by=who.user.id)
    )


@router.get("/alert-rules/{name}", response_model=Row, tags=["alert rules"], summary="Get")
def get_rule(name: Name, db_session: DbSession, _: Reader) -> Row:
    return _rule_row(_rule(db_session, name))


@router.get(
    "/alert-rules/{name}/history", response_model=list[Row], tags=["alert rules"], summary="Firings"
)
def rule_history(
    name: Name,
    db_session: DbSession,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[Row]:
    from keepwell.automation import service

    rule = _rule(db_session, name)
    return [row(f) for f in service.history(db_session=db_session, rule=rule, limit=limit)]


@router.post(
    "/alert-rules/{name}/{action}",
    response_model=Row,
    tags=["alert rules"],
    summary="Enable or disable",
)
def toggle_rule(
    name: Name,
    action: Annotated[str, Path(pattern="^(enable|disable)$")],
    db_session: DbSession,
    _: Admin,
) -> Row:
    from keepwell.automation import service

    rule = service.set_enabled(
        db_session=db_session, rule=_rule(db_session, name), enabled=action == "enable"
    )
    return _rule_row(rule)


@router.delete(
    "/alert-rules/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["alert rules"],
    summary="Delete an alert rule",
)
def delete_rule(name: Name, db_session: DbSession, _: Admin) -> Response:
    from keepwell.automation import service

    service.delete_rule(db_session=db_session, rule=_rule(db_session, name))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
