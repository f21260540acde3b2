"""`/v1/me` (who am I) and `/v1/users` (staff accounts; admins only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from keepwell.users import service as users_service
from keepwell.web.auth import Admin, DbSession, Reader
from keepwell.web.schemas import Me, UserCreate, UserRead, UserUpdate

router = APIRouter(tags=["users"])


@router.get("/me", response_model=Me, summary="The caller")
def me(who: Reader) -> Me:
    return Me(user=UserRead.model_validate(who.user), scopes=sorted(who.scopes), via=who.via)


@router.get("/users", response_model=list[UserRead], summary="List staff users")
def list_users(db_session: DbSession, _: Admin) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in users_service.get_all(db_session=db_session)]


@router.post(
    "/users", response_model=UserRead, status_code=status.HTTP_201_CREATED, summary="Add a user"
)
def create_user(body: UserCreate, db_session: DbSession, _: Admin) -> UserRead:
    user = users_service.create(db_session=db_session, **body.model_dump())
    return UserRead.model_validate(user)


@router.patch("/users/{email}", response_model=UserRead, summary="Change role or disable")
def update_user(email: str, body: UserUpdate, db_session: DbSession, _: Admin) -> UserRead:
    user = users_service.get_by_email_or_raise(db_session=db_session, email=email)
    if body.role is not None:
        user = users_service.set_role(db_session=db_session, email=email, role=body.role)
    if body.is_active is False:
        user = users_service.disable(db_session=db_session, email=email)
    elif body.is_active is True:
        user = users_service.enable(db_session=db_session, email=email)
    return UserRead.model_validate(user)
