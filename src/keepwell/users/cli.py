"""`keepwell users ...` (staff accounts) and `keepwell tokens ...` (API tokens)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work
from keepwell.users import service
from keepwell.users.models import Role

app = typer.Typer(
    help="Staff users: create, list, disable, roles, passwords.", no_args_is_help=True
)
tokens_app = typer.Typer(
    help="API tokens for the REST API: create, list, revoke.", no_args_is_help=True
)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("create")
@handle_errors
def create_user(
    email: Annotated[str, typer.Option(help="E-mail address (the login name).")],
    name: Annotated[str, typer.Option(help="Full name.")],
    role: Annotated[Role, typer.Option(help="admin, manager, csm or viewer.")] = Role.csm,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a staff user (the password is prompted for, or read with --password-stdin)."""
    password = _read_password(password_stdin)
    with unit_of_work(load_settings()) as db_session:
        user = service.create(
            db_session=db_session, email=email, name=name, role=role, password=password
        )
        console.print(f"Created {user.role.value} [bold]{user.email}[/] (id {user.id}).")


@app.command("list")
@handle_errors
def list_users() -> None:
    """List staff users with their role and state."""
    with unit_of_work(load_settings()) as db_session:
        table = Table(title="Staff users", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("id", "email", "name", "role", "active", "last login"):
            table.add_column(column, no_wrap=column != "name")
        for user in service.get_all(db_session=db_session):
            table.add_row(
                str(user.id),
                user.email,
                user.name,
                user.role.value,
                "yes" if user.is_active else "no",
                user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "",
            )
    console.print(table)


@app.command("disable")
@handle_errors
def disable_user(email: Annotated[str, typer.Argument(help="The user's e-mail address.")]) -> None:
    """Disable a user: their sessions and API tokens stop working."""
    with unit_of_work(load_settings()) as db_session:
        user = service.disable(db_session=db_session, email=email)
        console.print(f"Disabled [bold]{user.email}[/].")


@app.command("set-role")
@handle_errors
def set_role(
    email: Annotated[str, typer.Argument(help="The user's e-mail address.")],
    role: Annotated[Role, typer.Argument(help="admin, manager, csm or viewer.")],
) -> None:
    """Change a user's role."""
    with unit_of_work(load_settings()) as db_session:
        user = service.set_role(db_session=db_session, email=email, role=role)
        console.print(f"[bold]{user.email}[/] is now {user.role.value}.")


@app.command("reset-password")
@handle_errors
def reset_password(
    email: Annotated[str, typer.Argument(help="The user's e-mail address.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a new password (ends the user's web sessions)."""
    password = _read_password(password_stdin)
    with unit_of_work(load_settings()) as db_session:
        user = service.reset_password(db_session=db_session, email=email, password=password)
        console.print(f"New password set for [bold]{user.email}[/].")


@tokens_app.command("create")
@handle_errors
def create_token(
    email: Annotated[str, typer.Option(help="The staff user the token acts for.")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'billing sync'.")],
    scope: Annotated[
        list[str] | None, typer.Option(help="read, write or admin (repeatable).")
    ] = None,
) -> None:
    """Create an API token; its secret is printed once, store it now."""
    with unit_of_work(load_settings()) as db_session:
        token, secret = service.create_token(
            db_session=db_session, email=email, name=name, scopes=scope or ["read"]
        )
        console.print(
            f"Token {token.id} [bold]{token.name}[/] ({', '.join(token.scopes)}) "
            f"for {token.created_by.email}:"
        )
    typer.echo(secret)
    console.print("[dim]Send it as `Authorization: Bearer <token>`; it is not shown again.[/]")


@tokens_app.command("list")
@handle_errors
def list_tokens(
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
) -> None:
    """List API tokens (never their secrets)."""
    with unit_of_work(load_settings()) as db_session:
        table = Table(title="API tokens", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("id", "name", "prefix", "scopes", "user", "created", "last used", "state"):
            table.add_column(column, no_wrap=column != "name")
        for t in service.list_tokens(db_session=db_session, include_revoked=all_):
            table.add_row(
                str(t.id),
                t.name,
                t.prefix + "...",
                ",".join(t.scopes),
                t.created_by.email,
                t.created_at.strftime("%Y-%m-%d"),
                t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never",
                "revoked" if t.revoked else "active",
            )
    console.print(table)


@tokens_app.command("revoke")
@handle_errors
def revoke_token(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Revoke an API token (it stops working at once)."""
    with unit_of_work(load_settings()) as db_session:
        token = service.revoke_token(db_session=db_session, token_id=token_id)
        console.print(f"Revoked token {token.id} [bold]{token.name}[/].")
