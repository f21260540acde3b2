"""Errors as RFC 9457 problem details (``application/problem+json``), everywhere.

Every error response has ``type`` (a URI naming the kind of problem), ``title`` (same for every
occurrence of that kind), ``status``, ``detail`` (this occurrence, in words) and ``instance``
(the request path). Validation problems add ``errors``: one entry per bad field, with its path
(``field``, e.g. ``body.contacts.0.email``) or data row (``row``), and a message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from keepwell.errors import AlreadyExists, InvalidInput, KeepwellError, NotFound, StoreError

log = logging.getLogger("keepwell.web")

MEDIA_TYPE = "application/problem+json"
API_PREFIX = "/v1"
"""Routes under this prefix (and ``/openapi.json``) are for programs: errors stay problem
details. Everything else is a page a browser shows: invalid input is answered in HTML."""
TYPE_PREFIX = "urn:keepwell:problem:"

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise from a route to answer with a problem-details response.

    Args:
        status: HTTP status code.
        detail: what went wrong this time, for a person.
        kind: short name of the problem type (``type`` becomes ``urn:keepwell:problem:<kind>``).
        errors: per-field or per-row problems (``{"field"|"row": ..., "message": ...}``).
        headers: extra response headers (e.g. ``WWW-Authenticate``, ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title
        self.errors = errors
        self.headers = headers
        self.hint = hint


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    hint: str | None = None,
) -> JSONResponse:
    """A problem-details response for ``request``."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind if kind else "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if hint:
        body["hint"] = hint
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _field_path(loc: tuple | list) -> str:
    return ".".join(str(part) for part in loc)


def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        request,
        exc.status,
        exc.detail,
        kind=exc.kind,
        title=exc.title,
        errors=exc.errors,
        headers=exc.headers,
        hint=exc.hint,
    )


def is_page(request: Request) -> bool:
    """Whether ``request`` is for a page (HTML) rather than the API, decided by its route's
    path (never by the Accept header)."""
    path = request.url.path
    api = path == API_PREFIX or path.startswith(API_PREFIX + "/") or path == "/openapi.json"
    return not api


def html_error(
    request: Request, status: int, detail: str, *, errors: list[dict[str, Any]] | None = None
) -> Response:
    """The error page (``error.html``: the app's base layout, autoescaped) for a browser.

    No user in the header: the request's session has been rolled back by now, so its rows
    cannot be read.
    """
    from keepwell.web.templating import templates

    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "title": TITLES.get(status, "Error"),
            "detail": detail,
            "errors": errors or [],
            "back": request.url.path,
        },
        status_code=status,
    )


def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors[:5])
    if is_page(request):
        return html_error(request, 422, f"{len(errors)} invalid field(s): {fields}", errors=errors)
    return problem_response(
        request,
        422,
        f"{len(errors)} invalid field(s): {fields}",
        kind="validation",
        errors=errors,
    )


def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(
        request,
        exc.status_code,
        str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


def _on_keepwell(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeepwellError)
    if isinstance(exc, NotFound):
        status, kind = 404, "not-found"
    elif isinstance(exc, AlreadyExists):
        status, kind = 409, "already-exists"
    elif isinstance(exc, InvalidInput):
        status, kind = 422, "validation"
    elif isinstance(exc, StoreError):
        status, kind = 503, "store-unavailable"
    else:
        status, kind = 400, "bad-request"
    errors = getattr(exc, "errors", None)
    if not isinstance(errors, list):
        errors = None
    if errors is None and isinstance(exc, InvalidInput) and (exc.field or exc.row):
        entry: dict[str, Any] = {"message": exc.message}
        if exc.row is not None:
            entry["row"] = exc.row
        if exc.field is not None:
            entry["field"] = exc.field
        errors = [entry]
    return problem_response(request, status, exc.message, kind=kind, errors=errors, hint=exc.hint)


def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # the handler runs outside the ``except`` block: pass the exception for its traceback
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request, 500, "an unexpected error occurred; it was logged on the server", kind="internal"
    )


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem details."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(KeepwellError, _on_keepwell)
    app.add_exception_handler(Exception, _on_unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": TITLES[status],
        "content": {
            MEDIA_TYPE: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["type", "title", "status", "detail"],
                }
            }
        },
    }
    for status in (401, 403, 404, 409, 422)
}
"""OpenAPI ``responses`` entry documenting the problem-details answers of API routes."""
