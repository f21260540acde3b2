"""Checking the staff users that own tasks, customers and deals (via the users service)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from keepwell.errors import InvalidInput, NotFound
from keepwell.users import service as users_service
from keepwell.users.models import StaffUser


def get_staff_or_raise(*, db_session: Session, staff_id: int, field: str = "owner_id") -> StaffUser:
    """The active staff user with this id; :class:`NotFound` / :class:`InvalidInput` otherwise."""
    if isinstance(staff_id, bool) or not isinstance(staff_id, int):
        raise InvalidInput(
            f"{staff_id!r} is not a staff user id", field=field, expected="an integer"
        )
    user = users_service.get(db_session=db_session, user_id=staff_id)
    if user is None:
        raise NotFound(f"no staff user with id {staff_id}", hint="check the owner's id or e-mail")
    if not user.is_active:
        raise InvalidInput(f"staff user {user.email} is deactivated", field=field)
    return user


def staff_by_email_or_raise(*, db_session: Session, email: str) -> StaffUser:
    """The staff user with this e-mail (case-insensitive), or :class:`NotFound`."""
    return users_service.get_by_email_or_raise(db_session=db_session, email=email)


def label(user: StaffUser | None) -> str:
    """How a staff user is named in titles: their name, or 'nobody'."""
    return user.name if user is not None else "nobody"
