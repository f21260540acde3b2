"""Customer pages: the list (search, filters, sort, pages, bulk tag, CSV export) and the
customer 360 (profile, money, risk, health, usage, timeline, notes, tasks, tags)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import select

from keepwell.customers import notes as notes_service
from keepwell.customers import service as customer_service
from keepwell.customers import tags as tags_service
from keepwell.errors import InvalidInput, KeepwellError, NotFound
from keepwell.health import service as health_service
from keepwell.money import decimals, to_major
from keepwell.risk.models import RiskScore
from keepwell.tasks import service as tasks_service
from keepwell.users import service as users_service
from keepwell.web.auth import DbSession, PageUser, login_redirect_target
from keepwell.web.pages import queries, usage
from keepwell.web.pages.common import WriteUser, flash, redirect, render

router = APIRouter()

PAGE_SIZES = (25, 50, 100)
CSV_COLUMNS = (
    "external_id",
    "name",
    "email",
    "company",
    "industry",
    "country",
    "status",
    "owner",
    "tags",
    "plan",
    "mrr",
    "currency",
    "risk_band",
    "churn_probability",
    "health_band",
    "health",
    "signup_at",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Text = Annotated[str | None, Query(max_length=200)]


def _filter(
    q: str | None,
    segment: int | None,
    tag: str | None,
    owner: str | None,
    risk: str | None,
    health: str | None,
) -> queries.ListFilter:
    return queries.ListFilter(
        search=q or None,
        segment_id=segment,
        tag=tag or None,
        owner_email=owner or None,
        risk_band=risk or None,
        health_band=health or None,
    )


@router.get("/customers", response_class=HTMLResponse)
def customer_list(
    request: Request,
    who: PageUser,
    db_session: DbSession,
    q: Text = None,
    segment: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    tag: Text = None,
    owner: Text = None,
    risk: Literal["", "high", "medium", "low"] = "",
    health: Literal["", "red", "yellow", "green"] = "",
    sort: Literal["name", "signup_at", "external_id", "industry"] = "name",
    order: Literal["asc", "desc"] = "asc",
    page: Annotated[int, Query(ge=1, le=10**7)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> HTMLResponse:
    from keepwell.segments import service as segments_service

    flt = _filter(q, segment, tag, owner, risk, health)
    error = None
    try:
        total = queries.count(db_session=db_session, flt=flt)
        rows = queries.page(
            db_session=db_session,
            flt=flt,
            sort=sort,
            descending=order == "desc",
            limit=per_page,
            offset=(page - 1) * per_page,
        )
    except (InvalidInput, NotFound) as exc:
        total, rows, error = 0, [], exc.message
    pages = max(1, -(-total // per_page))
    return render(
        request,
        who,
        "pages/customers.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        per_page=per_page,
        page_sizes=PAGE_SIZES,
        error=error,
        f={
            "q": q or "",
            "segment": segment,
            "tag": tag or "",
            "owner": owner or "",
            "risk": risk,
            "health": health,
            "sort": sort,
            "order": order,
        },
        segments=segments_service.list_segments(db_session=db_session),
        tags=tags_service.list_tags(db_session=db_session),
        staff=users_service.get_all(db_session=db_session, include_disabled=False),
        export_query=urlencode(
            {
                key: value
                for key, value in request.query_params.multi_items()
                if key not in ("page", "per_page") and value
            }
        ),
    )


def _cell(value: object) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_row(r: queries.ListRow) -> list[str]:
    c = r.customer
    values = [
        c.external_id,
        c.name,
        c.email,
        c.company,
        c.industry,
        c.country,
        c.status.value,
        c.owner.email if c.owner else None,
        ";".join(sorted(t.name for t in c.tags)),
        r.plan,
        f"{to_major(r.mrr_minor, r.currency):.{decimals(r.currency)}f}" if r.currency else "",
        r.currency,
        r.risk_band,
        None if r.probability is None else f"{r.probability:.4f}",
        r.health_band,
        None if r.health is None else f"{r.health:.1f}",
        c.signup_at.isoformat(),
    ]
    return [_cell(v) for v in values]


@router.get("/customers/export.csv")
def export_csv(
    request: Request,
    who: PageUser,
    q: Text = None,
    segment: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    tag: Text = None,
    owner: Text = None,
    risk: Literal["", "high", "medium", "low"] = "",
    health: Literal["", "red", "yellow", "green"] = "",
    sort: Literal["name", "signup_at", "external_id", "industry"] = "name",
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    """The filtered list as CSV, streamed in batches (no size limit)."""
    flt = _filter(q, segment, tag, owner, risk, health)
    maker = request.app.state.sessionmaker
    with maker() as db_session:  # fail before streaming when the filter is wrong
        queries.count(db_session=db_session, flt=flt)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        with maker() as db_session:
            for n, r in enumerate(
                queries.iter_rows(
                    db_session=db_session, flt=flt, sort=sort, descending=order == "desc"
                )
            ):
                writer.writerow(_csv_row(r))
                if n % 500 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )


@router.post("/customers/bulk-tag")
def bulk_tag(
    db_session: DbSession,
    request: Request,
    who: WriteUser,
    tag: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[Literal["add", "remove"], Form()] = "add",
    ids: Annotated[list[str] | None, Form()] = None,
    back: Annotated[str, Form(max_length=4000)] = "/customers",
) -> Response:
    """Tag (or untag) the ticked customers."""
    target = login_redirect_target(back)
    try:
        if not ids:
            raise InvalidInput("tick at least one customer", field="customers")
        customer_ids = tags_service.ids_for_external_ids(db_session=db_session, external_ids=ids)
        bulk = tags_service.bulk_add if action == "add" else tags_service.bulk_remove
        n = bulk(
            db_session=db_session, customer_ids=customer_ids, tag_name=tag, actor_id=who.user.id
        )
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
        return redirect(target)
    done = "tagged" if action == "add" else "untagged"
    flash(request, f"{n} of {len(customer_ids)} customers {done} {tag.strip()!r}")
    return redirect(target)


# -- customer 360 ---------------------------------------------------------------------------


def _customer_or_404(request: Request, who, db_session, external_id: str):
    customer = customer_service.get_by_external_id(db_session=db_session, external_id=external_id)
    if customer is None:
        return None, render(
            request,
            who,
            "pages/not_found.html",
            status_code=404,
            what=f"No customer with external id {external_id!r}.",
        )
    return customer, None


def _latest_risk(db_session, customer_id: int) -> RiskScore | None:
    return db_session.scalars(
        select(RiskScore)
        .where(RiskScore.customer_id == customer_id)
        .order_by(RiskScore.as_of.desc(), RiskScore.scored_at.desc())
        .limit(1)
    ).first()


@router.get("/customers/{external_id}", response_class=HTMLResponse)
def customer_360(
    request: Request, external_id: str, who: PageUser, db_session: DbSession
) -> HTMLResponse:
    from keepwell.deals import service as deals_service

    customer, missing = _customer_or_404(request, who, db_session, external_id)
    if missing is not None:
        return missing
    overview = customer_service.overview(
        db_session=db_session, ref=f"#{customer.id}", timeline_limit=80
    )
    _, health = health_service.history(db_session=db_session, ref=f"#{customer.id}", limit=12)
    days = usage.daily_events(request.app.state.settings, external_id=customer.external_id)
    tasks = tasks_service.list_tasks(db_session=db_session, customer_id=customer.id, limit=50)
    return render(
        request,
        who,
        "pages/customer.html",
        c=customer,
        o=overview,
        risk=_latest_risk(db_session, customer.id),
        health=health,
        usage_total=sum(d.events for d in days),
        usage_days=sum(1 for d in days if d.events),
        usage_first=days[0].day if days else None,
        bars=usage.bars(days),
        tasks=tasks,
        open_statuses=[s.value for s in tasks_service.OPEN_STATUSES],
        deals=deals_service.list_deals(db_session=db_session, customer_id=customer.id, limit=20),
        notes_count=notes_service.count_notes(db_session=db_session, customer_id=customer.id),
        staff=users_service.get_all(db_session=db_session, include_disabled=False),
        all_tags=tags_service.list_tags(db_session=db_session),
    )


def _back(external_id: str) -> str:
    return "/customers/" + external_id


def _write(request: Request, external_id: str, done: str, action) -> Response:
    try:
        action()
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
    else:
        flash(request, done)
    return redirect(_back(external_id))


def _customer_id(db_session, external_id: str) -> int:
    customer = customer_service.get_by_external_id(db_session=db_session, external_id=external_id)
    if customer is None:
        raise NotFound(f"no customer with external id {external_id!r}")
    return customer.id


@router.post("/customers/{external_id}/notes")
def add_note(
    request: Request,
    external_id: str,
    who: WriteUser,
    db_session: DbSession,
    body: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    return _write(
        request,
        external_id,
        "Note added",
        lambda: notes_service.add_note(
            db_session=db_session,
            customer_id=_customer_id(db_session, external_id),
            body=body,
            author_id=who.user.id,
        ),
    )


@router.post("/customers/{external_id}/tasks")
def add_task(
    request: Request,
    external_id: str,
    who: WriteUser,
    db_session: DbSession,
    title: Annotated[str, Form(max_length=1000)] = "",
    description: Annotated[str, Form(max_length=100_000)] = "",
    due: Annotated[str, Form(max_length=40)] = "",
    priority: Annotated[str, Form(max_length=16)] = "normal",
    owner: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    def create() -> None:
        owner_id = None
        if owner:
            owner_id = users_service.get_by_email_or_raise(db_session=db_session, email=owner).id
        tasks_service.create_task(
            db_session=db_session,
            customer_id=_customer_id(db_session, external_id),
            title=title,
            description=description or None,
            owner_id=owner_id,
            due_at=due or None,
            priority=priority,
        )

    return _write(request, external_id, "Task created", create)


@router.post("/customers/{external_id}/tags")
def tag_customer(
    request: Request,
    external_id: str,
    who: WriteUser,
    db_session: DbSession,
    tag: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[Literal["add", "remove"], Form()] = "add",
) -> Response:
    act = tags_service.add_tag if action == "add" else tags_service.remove_tag
    return _write(
        request,
        external_id,
        f"Tag {'added' if action == 'add' else 'removed'}: {tag.strip()}",
        lambda: act(
            db_session=db_session,
            customer_id=_customer_id(db_session, external_id),
            tag_name=tag,
            actor_id=who.user.id,
        ),
    )
