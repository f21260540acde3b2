"""Who is asking, and may they: database sessions, principals, scopes, CSRF, page login.

Two ways in:

* **API tokens**: ``Authorization: Bearer kw_...`` (no cookies, so no CSRF check);
* **web sessions**: the signed, HttpOnly, SameSite=Lax ``keepwell_session`` cookie set by
  ``/login`` (Starlette's ``SessionMiddleware``, signed with the settings' secret key). Every
  state-changing request (POST/PUT/PATCH/DELETE) that rides on that cookie must carry the
  session's CSRF token, as the form field ``csrf_token`` or the ``X-CSRF-Token`` header.

For the REST API use ``Depends(require("read"|"write"|"admin"))``; for server-rendered pages
use ``Depends(page_user)`` (anonymous visitors are redirected to ``/login?next=...``) or
``Depends(page_require("write"))``, and put :func:`csrf_token` in every form.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.users import service as users_service
from keepwell.users.service import Principal
from keepwell.web.problems import Problem

SESSION_COOKIE = "keepwell_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_EXEMPT_PREFIXES: tuple[str, ...] = ("/v1/webhooks/", "/u/", "/o/", "/c/")
"""Paths whose POSTs are authenticated by a signature or a signed token, never by the cookie."""


def get_settings(request: Request) -> Settings:
    """The application's settings."""
    return request.app.state.settings


def get_db(request: Request) -> Iterator[Session]:
    """A database session for this request: committed when the route returns, else rolled back.

    State-changing requests (POST/PUT/PATCH/DELETE) get a session whose transactions take the
    write lock when they begin (``BEGIN IMMEDIATE`` on SQLite, see
    :func:`keepwell.db.write_engine`), so a request that reads before it writes waits for
    concurrent writers instead of failing with "database is locked"; reads stay deferred.
    """
    state = request.app.state
    if request.method in SAFE_METHODS:
        session = state.sessionmaker()
    else:
        session = state.sessionmaker(bind=state.write_engine)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_db, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]


# -- sessions -----------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use); put it in every form as ``csrf_token``."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def log_in(request: Request, principal_user) -> None:
    """Start a web session for ``principal_user`` (a fresh session: new CSRF token)."""
    request.session.clear()
    request.session["uid"] = principal_user.id
    request.session["ver"] = users_service.session_version(principal_user)
    request.session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    """End the web session."""
    request.session.clear()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_principal(request: Request, db_session: DbSession) -> Principal | None:
    """The authenticated principal (token first, then session), or None for anonymous."""
    if "principal" in request.state._state:
        return request.state.principal
    principal: Principal | None = None
    secret = _bearer(request)
    if secret is not None:
        principal = users_service.authenticate_token(db_session=db_session, secret=secret)
        if principal is None:
            raise Problem(
                401,
                "the API token is unknown, revoked, or its user is disabled",
                kind="invalid-token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
    elif "uid" in request.session:
        user = users_service.get(db_session=db_session, user_id=request.session["uid"])
        if (
            user is not None
            and user.is_active
            and request.session.get("ver") == users_service.session_version(user)
        ):
            principal = users_service.principal_for_session(user)
        else:
            request.session.clear()
    request.state.principal = principal
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(current_principal)]


def require(scope: str) -> Callable[..., Principal]:
    """API dependency: 401 for anonymous requests, 403 without ``scope``."""

    def dependency(principal: MaybePrincipal) -> Principal:
        if principal is None:
            raise Problem(
                401,
                "log in or send an API token as `Authorization: Bearer <token>`",
                kind="unauthenticated",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.can(scope):
            raise Problem(
                403,
                f"this needs the {scope!r} scope; you have {sorted(principal.scopes)} "
                f"(role {principal.user.role.value})",
                kind="forbidden",
            )
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Admin = Annotated[Principal, Depends(require("admin"))]


class LoginRequired(Exception):
    """Raised by page dependencies for anonymous visitors; answered with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def page_user(request: Request, principal: MaybePrincipal) -> Principal:
    """Page dependency: the logged-in user; anonymous visitors go to ``/login?next=<here>``."""
    if principal is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(here)
    return principal


def page_require(scope: str) -> Callable[..., Principal]:
    """Page dependency: logged in (else redirect) and holding ``scope`` (else 403)."""

    def dependency(principal: Annotated[Principal, Depends(page_user)]) -> Principal:
        if not principal.can(scope):
            raise Problem(403, f"your role ({principal.user.role.value}) cannot do this")
        return principal

    return dependency


PageUser = Annotated[Principal, Depends(page_user)]


def login_redirect_target(next_url: str | None) -> str:
    """Where to go after login: a local path only (never another site)."""
    if next_url and next_url.startswith("/") and not next_url.startswith("//"):
        return next_url
    return "/"


def login_url(next_url: str) -> str:
    """The login page that returns to ``next_url``."""
    return f"/login?next={quote(next_url, safe='/')}"


# -- CSRF -------------------------------------------------------------------------------------


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: state-changing requests that ride on the session cookie must carry
    the session's CSRF token (``csrf_token`` form field or ``X-CSRF-Token`` header).

    Skipped for safe methods, bearer-token requests (no ambient credentials), webhook and
    public token paths, and cookie-less requests (anonymous: the route's auth refuses them),
    except ``/login``, which always checks it (no login CSRF).
    """
    if request.method in SAFE_METHODS or _bearer(request) is not None:
        return
    path = request.url.path
    if path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    if not request.session and path != "/login":
        return
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        raise Problem(
            403,
            "missing or wrong CSRF token: reload the page and try again",
            kind="csrf",
            hint="forms must send the session's csrf_token; scripts send X-CSRF-Token",
        )
