"""The campaign composer: choose a template and a segment, preview the message for one
customer, create (with an optional local send time), launch, and read the results."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from keepwell.errors import InvalidInput, KeepwellError, NotFound
from keepwell.web.auth import DbSession, PageUser
from keepwell.web.pages.common import WriteUser, flash, redirect, render

router = APIRouter()

Small = Annotated[str, Query(max_length=255)]


def _preview(db_session, *, template: str, segment: str, customer: str):
    """(customer, rendered message) for the composer's preview; raises KeepwellError."""
    from keepwell.campaigns import service as campaigns
    from keepwell.campaigns.templates import render_preview
    from keepwell.customers import service as customer_service
    from keepwell.segments import service as segments

    tpl = campaigns.get_template(db_session=db_session, name_or_id=template)
    if customer.strip():
        target = customer_service.get_by_external_id(
            db_session=db_session, external_id=customer.strip()
        )
        if target is None:
            raise NotFound(f"no customer with external id {customer.strip()!r}")
    elif segment:
        seg = segments.get_segment(db_session=db_session, name_or_id=segment)
        first = segments.members(db_session=db_session, segment=seg, limit=1)
        if not first.rows:
            raise InvalidInput(f"segment {seg.name!r} has no members to preview", field="segment")
        target = first.rows[0]
    else:
        raise InvalidInput("choose a segment or name a customer to preview", field="customer")
    return target, render_preview(db_session=db_session, template=tpl, customer_id=target.id)


@router.get("/campaigns", response_class=HTMLResponse)
def composer(
    request: Request,
    who: PageUser,
    db_session: DbSession,
    template: Small = "",
    segment: Small = "",
    customer: Small = "",
    name: Small = "",
    preview: bool = False,
) -> HTMLResponse:
    from keepwell.campaigns import service as campaigns
    from keepwell.segments import service as segments

    shown = error = None
    if preview:
        try:
            shown = _preview(db_session, template=template, segment=segment, customer=customer)
        except KeepwellError as exc:
            error = exc.message
    return render(
        request,
        who,
        "pages/campaigns.html",
        campaigns=campaigns.list_campaigns(db_session=db_session),
        templates=campaigns.list_templates(db_session=db_session),
        segments=segments.list_segments(db_session=db_session),
        form={"template": template, "segment": segment, "customer": customer, "name": name},
        shown=shown,
        error=error,
    )


@router.post("/campaigns")
def create_campaign(
    request: Request,
    who: WriteUser,
    db_session: DbSession,
    name: Annotated[str, Form(max_length=1000)] = "",
    template: Annotated[str, Form(max_length=255)] = "",
    segment: Annotated[str, Form(max_length=255)] = "",
    holdout: Annotated[float, Form(ge=0, lt=100)] = 0.0,
    send_date: Annotated[str, Form(max_length=20)] = "",
    send_time: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    from keepwell.campaigns import service as campaigns

    try:
        if not template:
            raise InvalidInput("choose a template", field="template")
        if not segment:
            raise InvalidInput("choose a segment", field="segment")
        try:
            day = date.fromisoformat(send_date) if send_date else None
        except ValueError:
            raise InvalidInput(
                f"send date {send_date!r}", field="send_date", expected="YYYY-MM-DD"
            ) from None
        campaign = campaigns.create_campaign(
            db_session=db_session,
            name=name,
            variants=[campaigns.VariantIn(name="A", template=template, percent=100.0)],
            segment=segment,
            holdout_percent=holdout,
            send_date=day,
            send_time=send_time or None,
        )
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
        return redirect("/campaigns")
    flash(request, f"Campaign {campaign.name!r} created as a draft: check it, then launch")
    return redirect(f"/campaigns/{campaign.id}")


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_results(
    request: Request, campaign_id: int, who: PageUser, db_session: DbSession
) -> HTMLResponse:
    from keepwell.campaigns import service as campaigns

    try:
        campaign = campaigns.get_campaign(db_session=db_session, name_or_id=campaign_id)
    except NotFound as exc:
        return render(request, who, "pages/not_found.html", status_code=404, what=exc.message)
    results = campaigns.results(db_session=db_session, campaign=campaign)
    return render(request, who, "pages/campaign.html", c=campaign, r=results)


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(
    request: Request, campaign_id: int, action: str, who: WriteUser, db_session: DbSession
) -> Response:
    """``launch`` (queue the messages; scheduled ones wait for their local send time) or
    ``cancel``."""
    from keepwell.campaigns import service as campaigns

    try:
        campaign = campaigns.get_campaign(db_session=db_session, name_or_id=campaign_id)
        if action == "launch":
            report = campaigns.launch(
                db_session=db_session, settings=request.app.state.settings, campaign=campaign
            )
            flash(request, f"Launched: {report.audience:,} recipients, status {report.status}")
        elif action == "cancel":
            n = campaigns.cancel_campaign(db_session=db_session, campaign=campaign)
            flash(request, f"Cancelled: {n:,} messages withdrawn")
        else:
            raise NotFound(f"no campaign action {action!r}")
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
    return redirect(f"/campaigns/{campaign_id}")
