"""Staff users, passwords, API tokens and login rate limiting. The only place with auth logic.

Passwords are hashed with argon2id (argon2-cffi, OWASP's parameters); API tokens are random 256-bit
secrets shown once, stored as a SHA-256 hash (a fast hash is right for high-entropy secrets and
keeps every API request cheap).

Roles grant scopes: viewer -> ``read``; csm, manager -> ``read``, ``write``; admin -> all three.
A token acts with the scopes it was given that its creator's *current* role still allows.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.models import utcnow
from keepwell.users.models import ApiToken, LoginAttempt, Role, StaffUser

__all__ = [
    "LOGIN_WINDOW",
    "MAX_FAILURES_PER_ACCOUNT",
    "MAX_FAILURES_PER_IP",
    "MIN_PASSWORD_LENGTH",
    "ROLE_SCOPES",
    "SCOPES",
    "LoginThrottled",
    "Principal",
    "authenticate",
    "authenticate_token",
    "create",
    "create_token",
    "disable",
    "enable",
    "get",
    "get_all",
    "get_by_email",
    "get_by_email_or_raise",
    "list_tokens",
    "principal_for_session",
    "reset_password",
    "revoke_token",
    "session_version",
    "set_role",
]

SCOPES = ("read", "write", "admin")
"""Scopes an API token can carry: read data, change data, manage users and settings."""

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.viewer: frozenset({"read"}),
    Role.csm: frozenset({"read", "write"}),
    Role.manager: frozenset({"read", "write"}),
    Role.admin: frozenset({"read", "write", "admin"}),
}

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
"""Failed logins for one e-mail address within :data:`LOGIN_WINDOW` before it is throttled."""
KEEP_ATTEMPTS = timedelta(days=1)
"""Login attempts older than this are deleted (at the next attempt)."""
MAX_FAILURES_PER_IP = 20
"""Failed logins from one IP address within :data:`LOGIN_WINDOW` before it is throttled."""

TOKEN_PREFIX = "kw_"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
"""argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~0.15 s per check on
a busy 2-core machine, where argon2-cffi's default (64 MiB, 3 passes, 4 lanes) took ~0.9 s.
Hashes made with other parameters are upgraded at the next successful login."""


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so timing does not reveal which do."""
    return _hasher.hash("keepwell-dummy-password")


@dataclass(frozen=True)
class Principal:
    """Who makes a request and what they may do (``via`` is ``session`` or ``token``)."""

    user: StaffUser
    scopes: frozenset[str]
    via: str
    token_id: int | None = None

    def can(self, scope: str) -> bool:
        """Whether this principal holds ``scope``."""
        return scope in self.scopes


class LoginThrottled(InvalidInput):
    """Raised when too many logins failed recently for this account or IP address."""


# -- users ------------------------------------------------------------------------------------


def _normal_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidInput(f"{email!r} is not an e-mail address", field="email")
    return email


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password has {len(password)} characters",
            field="password",
            expected=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
        )


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role {role!r}", field="role", expected=", ".join(r.value for r in Role)
        ) from None


def get(*, db_session: Session, user_id: int) -> StaffUser | None:
    """The staff user with this id, or None."""
    return db_session.get(StaffUser, user_id)


def get_by_email(*, db_session: Session, email: str) -> StaffUser | None:
    """The staff user with this e-mail address (case-insensitive), or None."""
    return db_session.scalars(
        select(StaffUser).where(func.lower(StaffUser.email) == (email or "").strip().lower())
    ).first()


def get_by_email_or_raise(*, db_session: Session, email: str) -> StaffUser:
    """The staff user with this e-mail address; :class:`NotFound` if there is none."""
    user = get_by_email(db_session=db_session, email=email)
    if user is None:
        raise NotFound(f"no staff user {email!r}", hint="see `keepwell users list`")
    return user


def get_all(*, db_session: Session, include_disabled: bool = True) -> list[StaffUser]:
    """Every staff user, by e-mail address."""
    query = select(StaffUser).order_by(StaffUser.email)
    if not include_disabled:
        query = query.where(StaffUser.is_active.is_(True))
    return list(db_session.scalars(query))


def create(
    *,
    db_session: Session,
    email: str,
    name: str,
    role: Role | str = Role.csm,
    password: str | None = None,
) -> StaffUser:
    """Create a staff user; without a password they cannot log in until one is set.

    Raises:
        InvalidInput: bad e-mail, empty name, unknown role or a too short/long password.
        AlreadyExists: the e-mail address is taken.
    """
    email = _normal_email(email)
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise InvalidInput("name must have 1 to 255 characters", field="name")
    role = _role(role)
    if password is not None:
        _check_password(password)
    if get_by_email(db_session=db_session, email=email) is not None:
        raise AlreadyExists(f"a staff user {email!r} exists already")
    user = StaffUser(
        email=email,
        name=name,
        role=role,
        password_hash=_hasher.hash(password) if password is not None else None,
        is_active=True,
    )
    db_session.add(user)
    db_session.flush()
    return user


def set_role(*, db_session: Session, email: str, role: Role | str) -> StaffUser:
    """Give a staff user another role (takes effect on their next request)."""
    user = get_by_email_or_raise(db_session=db_session, email=email)
    user.role = _role(role)
    db_session.flush()
    return user


def disable(*, db_session: Session, email: str) -> StaffUser:
    """Disable a staff user: their sessions and API tokens stop working at once."""
    user = get_by_email_or_raise(db_session=db_session, email=email)
    user.is_active = False
    db_session.flush()
    return user


def enable(*, db_session: Session, email: str) -> StaffUser:
    """Enable a disabled staff user again."""
    user = get_by_email_or_raise(db_session=db_session, email=email)
    user.is_active = True
    db_session.flush()
    return user


def reset_password(*, db_session: Session, email: str, password: str) -> StaffUser:
    """Set a new password (this also ends the user's existing web sessions)."""
    _check_password(password)
    user = get_by_email_or_raise(db_session=db_session, email=email)
    user.password_hash = _hasher.hash(password)
    db_session.flush()
    return user


def session_version(user: StaffUser) -> str:
    """A short fingerprint of the password hash; a session made before a reset stops matching."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


# -- login and rate limiting --------------------------------------------------------------------


def _recent_failures(db_session: Session, column, value: str, since: datetime) -> int:
    return (
        db_session.scalar(
            select(func.count(LoginAttempt.id)).where(
                column == value,
                LoginAttempt.attempted_at >= since,
                LoginAttempt.succeeded.is_(False),
            )
        )
        or 0
    )


def authenticate(
    *, db_session: Session, email: str, password: str, ip: str, now: datetime | None = None
) -> StaffUser | None:
    """Check a web login; return the user, or None when the e-mail or password is wrong.

    Every attempt is recorded. Failures are counted over :data:`LOGIN_WINDOW`, per e-mail
    address and per IP address (persisted, so limits hold across restarts and workers).

    Raises:
        LoginThrottled: too many recent failures for this account or this IP address (the
            password is not even checked).
    """
    now = now or utcnow()
    email = (email or "").strip().lower()[:320]
    ip = (ip or "unknown")[:64]
    since = now - LOGIN_WINDOW
    if (
        _recent_failures(db_session, LoginAttempt.email, email, since) >= MAX_FAILURES_PER_ACCOUNT
        or _recent_failures(db_session, LoginAttempt.ip, ip, since) >= MAX_FAILURES_PER_IP
    ):
        raise LoginThrottled(
            "too many failed logins; try again in a few minutes",
            hint=f"logins are limited to {MAX_FAILURES_PER_ACCOUNT} failures per account "
            f"and {MAX_FAILURES_PER_IP} per IP address in {LOGIN_WINDOW.seconds // 60} minutes",
        )
    user = get_by_email(db_session=db_session, email=email) if email else None
    ok = False
    if user is not None and user.is_active and user.password_hash and len(password) <= 4096:
        try:
            ok = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if ok and _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
    else:
        # The same work as a real check: no timing oracle for which accounts exist.
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password[:4096] + "x")
    db_session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < now - KEEP_ATTEMPTS))
    db_session.add(LoginAttempt(email=email, ip=ip, attempted_at=now, succeeded=ok))
    if ok:
        assert user is not None
        user.last_login_at = now
    db_session.flush()
    return user if ok else None


# -- API tokens ---------------------------------------------------------------------------------


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    *,
    db_session: Session,
    email: str,
    name: str,
    scopes: list[str] | tuple[str, ...] = ("read",),
) -> tuple[ApiToken, str]:
    """Create an API token for staff user ``email``; returns the row and the secret (shown once).

    Raises:
        InvalidInput: empty name, unknown scope, or a scope the user's role does not allow.
        NotFound: no such user.
    """
    user = get_by_email_or_raise(db_session=db_session, email=email)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise InvalidInput("token name must have 1 to 120 characters", field="name")
    wanted = {s.strip().lower() for s in scopes if s.strip()}
    unknown = wanted - set(SCOPES)
    if not wanted or unknown:
        raise InvalidInput(
            f"bad scope(s) {sorted(unknown) or '(none)'}",
            field="scopes",
            expected=", ".join(SCOPES),
        )
    beyond = wanted - ROLE_SCOPES[user.role]
    if beyond:
        raise InvalidInput(
            f"a {user.role.value} cannot hold scope(s) {sorted(beyond)}",
            field="scopes",
            expected=", ".join(sorted(ROLE_SCOPES[user.role])),
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        token_hash=_token_hash(secret),
        prefix=secret[:10],
        scopes=[s for s in SCOPES if s in wanted],
        created_by_id=user.id,
        created_at=utcnow(),
    )
    db_session.add(token)
    db_session.flush()
    return token, secret


def list_tokens(*, db_session: Session, include_revoked: bool = False) -> list[ApiToken]:
    """API tokens, newest first."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return list(db_session.scalars(query))


def revoke_token(*, db_session: Session, token_id: int) -> ApiToken:
    """Revoke a token (kept for the record; it stops working at once)."""
    token = db_session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no API token {token_id}", hint="see `keepwell tokens list`")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db_session.flush()
    return token


LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token (not on every request)."""


def _touch(db_session: Session, token: ApiToken, now) -> None:
    """Record ``last_used_at``, best effort: on SQLite a read transaction cannot become a write
    one after another connection wrote ("database is locked" at once, whatever the busy
    timeout); a missed stamp must not fail the request."""
    try:
        with db_session.begin_nested():
            token.last_used_at = now
            db_session.flush()
    except OperationalError:
        db_session.expire(token, ["last_used_at"])


def authenticate_token(*, db_session: Session, secret: str) -> Principal | None:
    """The principal for an API token secret, or None if it is unknown, revoked or its user
    is disabled."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = db_session.scalars(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(secret))
    ).first()
    if token is None or token.revoked_at is not None or not token.created_by.is_active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        _touch(db_session, token, now)
    scopes = frozenset(token.scopes) & ROLE_SCOPES[token.created_by.role]
    return Principal(user=token.created_by, scopes=scopes, via="token", token_id=token.id)


def principal_for_session(user: StaffUser) -> Principal:
    """The principal of a logged-in web user (scopes from their role)."""
    return Principal(user=user, scopes=ROLE_SCOPES[user.role], via="session")
