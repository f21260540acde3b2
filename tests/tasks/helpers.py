"""Staff users for task, deal and note tests."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from keepwell.users.models import Role, StaffUser

_seq = itertools.count(1)


def make_staff(db_session: Session, name: str | None = None, **overrides) -> StaffUser:
    n = next(_seq)
    name = name or f"Staff {n}"
    values = {
        "email": f"{name.lower().replace(' ', '.')}.{n}@example.com",
        "name": name,
        "role": Role.csm,
    }
    values.update(overrides)
    user = StaffUser(**values)
    db_session.add(user)
    db_session.flush()
    return user
