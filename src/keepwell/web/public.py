"""Routes open to anonymous visitors: health check, login/logout, e-mail links.

The e-mail link routes (``/u/<token>`` unsubscribe, ``/o/<token>`` open pixel, ``/c/<token>``
click) are authenticated by the signed token in the URL and reveal nothing internal: a bad
token gets a plain "this link is not valid" answer.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import text

from keepwell.errors import InvalidInput
from keepwell.users import service as users_service
from keepwell.web.auth import (
    AppSettings,
    DbSession,
    MaybePrincipal,
    log_in,
    log_out,
    login_redirect_target,
)
from keepwell.web.templating import templates

router = APIRouter()

PUBLIC_PATHS = frozenset(
    {"/healthz", "/login", "/logout", "/u/{token}", "/o/{token}", "/c/{token}"}
)
"""Route paths anonymous visitors may use (tests check every other route refuses them)."""

SIGNED_PATHS = frozenset({"/v1/webhooks/stripe"})
"""Routes authenticated by a request signature instead of a login (refused without one)."""

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@router.get("/healthz", tags=["public"], summary="Liveness and database check")
def healthz(db_session: DbSession) -> dict[str, str]:
    """``{"status": "ok"}`` when the server and its database answer."""
    db_session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, principal: MaybePrincipal, next: str = "/") -> Response:
    if principal is not None and principal.via == "session":
        return RedirectResponse(login_redirect_target(next), status_code=303)
    return templates.TemplateResponse(
        request, "login.html", {"next": login_redirect_target(next), "email": "", "error": None}
    )


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
def login_submit(
    request: Request,
    db_session: DbSession,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    ip = request.client.host if request.client else "unknown"
    status = 401
    try:
        user = users_service.authenticate(
            db_session=db_session, email=email, password=password, ip=ip
        )
        error = None if user else "Wrong e-mail address or password."
    except users_service.LoginThrottled as exc:
        user, error, status = None, exc.message, 429
    if user is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": login_redirect_target(next), "email": email, "error": error},
            status_code=status,
        )
    log_in(request, user)
    return RedirectResponse(login_redirect_target(next), status_code=303)


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    log_out(request)
    return RedirectResponse("/login", status_code=303)


def _bad_link() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>Link not valid</title><p>This link is not valid.</p>",
        status_code=404,
    )


@router.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_page(token: str) -> Response:
    """A confirmation page; the button POSTs to the same URL (mail clients POST directly)."""
    from html import escape

    return HTMLResponse(
        "<!doctype html><title>Unsubscribe</title>"
        "<p>Stop receiving these e-mails?</p>"
        f'<form method="post" action="/u/{escape(token, quote=True)}">'
        '<button type="submit">Unsubscribe</button></form>'
    )


@router.post("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe(token: str, db_session: DbSession, settings: AppSettings) -> Response:
    """RFC 8058 one-click unsubscribe (and the confirmation page's button)."""
    from keepwell.email import service as email_service

    try:
        email_service.unsubscribe(db_session=db_session, token=token, settings=settings)
    except InvalidInput:
        return _bad_link()
    return HTMLResponse(
        "<!doctype html><title>Unsubscribed</title>"
        "<p>You are unsubscribed. Sorry to see you go.</p>"
    )


@router.get("/o/{token}", include_in_schema=False)
def open_pixel(token: str, db_session: DbSession, settings: AppSettings) -> Response:
    """A 1x1 GIF; records the open when the token is good (the pixel is sent either way)."""
    from keepwell.email import service as email_service

    with contextlib.suppress(InvalidInput):
        email_service.record_open(db_session=db_session, token=token, settings=settings)
    return Response(_PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/c/{token}", include_in_schema=False)
def click(token: str, db_session: DbSession, settings: AppSettings) -> Response:
    """Record a click and redirect to the URL signed in the token (never any other)."""
    from keepwell.email import service as email_service

    try:
        url = email_service.resolve_click(db_session=db_session, token=token, settings=settings)
    except InvalidInput:
        return _bad_link()
    return RedirectResponse(url, status_code=302)
