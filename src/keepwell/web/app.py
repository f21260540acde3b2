"""The application factory: one FastAPI app for the REST API, staff pages and public pages.

::

    app = create_app(Settings())          # or create_app() to read the environment

What it sets up, in order: the database engine (``app.state.engine``, ``app.state.sessionmaker``,
``app.state.write_engine`` for state-changing requests, ``app.state.settings``), the signed
session cookie, app-wide CSRF protection, problem-details errors, the public routes, ``/v1``
and the staff pages (``keepwell.web.pages.router`` when that package exists). ``/docs`` and
``/openapi.json`` need a login or token like everything else.
"""

from __future__ import annotations

import importlib
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from keepwell import __version__
from keepwell.config import Settings
from keepwell.db import engine_from_settings, make_sessionmaker, write_engine
from keepwell.web import problems
from keepwell.web.auth import (
    SESSION_COOKIE,
    LoginRequired,
    PageUser,
    Reader,
    csrf_protect,
    login_url,
)
from keepwell.web.templating import templates

log = logging.getLogger("keepwell.web")

SESSION_MAX_AGE = 12 * 60 * 60
"""A web session lasts 12 hours."""

PAGES_MODULE = "keepwell.web.pages"
"""Staff pages are mounted from ``<PAGES_MODULE>.router`` when that module exists."""


def _optional_router(module: str) -> Any | None:
    try:
        return getattr(importlib.import_module(module), "router", None)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
"""Sent with every response: no MIME sniffing, no framing (clickjacking), no full referrers."""


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    return str(schema.get("type", "any"))


def operation_groups(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The OpenAPI operations grouped by tag, flattened for the /docs page."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {})
            groups.setdefault((op.get("tags") or ["other"])[0], []).append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary"),
                    "description": op.get("description"),
                    "parameters": [
                        {**p, "type": _type(p.get("schema", {}))} for p in op.get("parameters", [])
                    ],
                    "body": ", ".join(
                        f"{media}: {_type(c.get('schema', {}))}" for media, c in body.items()
                    ),
                    "responses": list(op.get("responses", {})),
                }
            )
    return groups


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the keepwell web application for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    engine = engine_from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        engine.dispose()

    app = FastAPI(
        title="keepwell",
        version=__version__,
        summary="Customer retention: customers, usage, revenue, risk and health.",
        description=(
            "Authenticate with `Authorization: Bearer <token>` (create one with "
            "`keepwell tokens create`) or a web login. Errors are RFC 9457 problem details."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect)],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.write_engine = write_engine(engine)  # what write requests' sessions bind to
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.resolved_secret_key().decode(),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.base_url.lower().startswith("https://"),
    )
    app.add_middleware(SecurityHeaders)
    problems.install(app)

    @app.exception_handler(LoginRequired)
    async def _to_login(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(login_url(exc.next_url), status_code=303)

    from keepwell.web import public
    from keepwell.web.api import router as api_router

    app.include_router(public.router)
    app.include_router(api_router)
    pages = _optional_router(PAGES_MODULE)
    if pages is not None:
        app.include_router(pages)
    else:

        @app.get("/", include_in_schema=False, response_class=HTMLResponse)
        def home(request: Request, who: PageUser) -> Response:
            return templates.TemplateResponse(request, "home.html", {"user": who.user})

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(_: Reader) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def api_docs(request: Request, who: PageUser) -> Response:
        """The API reference, rendered on the server (no script or stylesheet from a CDN)."""
        spec = app.openapi()
        return templates.TemplateResponse(
            request,
            "api_docs.html",
            {"user": who.user, "spec": spec, "groups": operation_groups(spec)},
        )

    return app
