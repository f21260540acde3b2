"""What every staff page shares: templates and filters, who may write, flash messages."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from keepwell.money import format_money
from keepwell.users.service import Principal
from keepwell.web.auth import page_require
from keepwell.web.templating import make_templates

DASH = "\N{EN DASH}"
"""Shown for an unknown value."""

TEMPLATES_DIR = Path(__file__).parent / "templates"

templates = make_templates(TEMPLATES_DIR)

WriteUser = Annotated[Principal, Depends(page_require("write"))]
"""A logged-in user who may change data (viewers get 403)."""
AdminUser = Annotated[Principal, Depends(page_require("admin"))]
"""A logged-in admin (everyone else gets 403)."""

NAV = (
    ("/", "Dashboard"),
    ("/customers", "Customers"),
    ("/tasks", "Tasks & alerts"),
    ("/segments", "Segments"),
    ("/campaigns", "Campaigns"),
    ("/deals", "Deals"),
)


def money(minor: int | float | None, currency: str | None) -> str:
    """``12345, "USD"`` -> ``$123.45``; a dash when unknown."""
    if minor is None or currency is None or (isinstance(minor, float) and math.isnan(minor)):
        return DASH
    return format_money(round(minor), currency)


def pct(value: float | None, digits: int = 1) -> str:
    """``0.1234`` -> ``12.3%``; a dash when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:.{digits}%}"


def when(value: datetime | date | None) -> str:
    """A timestamp as ``2026-03-01 14:05 UTC`` (a date as ``2026-03-01``)."""
    if value is None:
        return DASH
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def query_with(request: Request, **changes: Any) -> str:
    """The current query string with ``changes`` applied (None removes a parameter)."""
    params = {k: v for k, v in request.query_params.multi_items() if k not in changes}
    params.update({k: v for k, v in changes.items() if v is not None and v != ""})
    return "?" + urlencode(params)


templates.env.filters["money"] = money
templates.env.filters["pct"] = pct
templates.env.filters["when"] = when
templates.env.globals["query_with"] = query_with
templates.env.globals["NAV"] = NAV


FLASH_MAX = 300
"""Longest flash message kept (the session cookie must stay well under 4 kB)."""


def flash(request: Request, message: str, *, error: bool = False) -> None:
    """Show ``message`` on the next page this session renders (shortened to
    :data:`FLASH_MAX` characters: it travels in the session cookie)."""
    if len(message) > FLASH_MAX:
        message = message[: FLASH_MAX - 1] + "\N{HORIZONTAL ELLIPSIS}"
    request.session.setdefault("flash", [])
    request.session["flash"] = [*request.session["flash"], [message, error]]


def render(
    request: Request, who: Principal, template: str, /, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render page ``template`` for ``who`` (with role flags and pending flash messages)."""
    messages = request.session.pop("flash", []) if "flash" in request.session else []
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": who.user,
            "can_write": who.can("write"),
            "is_admin": who.can("admin"),
            "messages": messages,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )


def redirect(url: str) -> RedirectResponse:
    """See-other redirect after a form post."""
    return RedirectResponse(url, status_code=303)


def engine_of(request: Request):
    """The application's database engine."""
    return request.app.state.engine
