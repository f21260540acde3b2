"""`keepwell notes ...`: write and read notes on a customer (service: keepwell.customers.notes)."""

from __future__ import annotations

from typing import Annotated

import typer

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work

app = typer.Typer(help="Notes on customers: add, list.", no_args_is_help=True)


@app.command("add")
@handle_errors
def add_command(
    customer: Annotated[str, typer.Argument(help="Customer external id (or #id).")],
    body: Annotated[str, typer.Argument(help="The note's text.")],
    author: Annotated[
        str | None, typer.Option("--author", envvar="KEEPWELL_USER", help="Your staff e-mail.")
    ] = None,
) -> None:
    """Write a note on a customer."""
    from keepwell.customers import notes
    from keepwell.customers.service import get_or_raise
    from keepwell.tasks.staff import staff_by_email_or_raise

    with unit_of_work(load_settings()) as db_session:
        target = get_or_raise(db_session=db_session, ref=customer)
        author_id = (
            staff_by_email_or_raise(db_session=db_session, email=author).id if author else None
        )
        note = notes.add_note(
            db_session=db_session, customer_id=target.id, body=body, author_id=author_id
        )
        console.print(f"Added note {note.id} to {target.external_id}.")


@app.command("list")
@handle_errors
def list_command(
    customer: Annotated[str, typer.Argument(help="Customer external id (or #id).")],
    limit: Annotated[int, typer.Option(help="How many to show.")] = 20,
) -> None:
    """A customer's notes, newest first."""
    from keepwell.customers import notes
    from keepwell.customers.service import get_or_raise
    from keepwell.users.models import StaffUser

    with unit_of_work(load_settings()) as db_session:
        target = get_or_raise(db_session=db_session, ref=customer)
        found = notes.list_notes(db_session=db_session, customer_id=target.id, limit=limit)
        for n in found:
            who = db_session.get(StaffUser, n.author_id) if n.author_id else None
            by = f" [dim]{who.email}[/]" if who else ""
            console.print(f"[bold]{n.id}[/] {n.created_at:%Y-%m-%d %H:%M}{by}")
            console.print(f"    {n.body}", markup=False, highlight=False)
    if not found:
        console.print(f"[dim]No notes on {customer}.[/]")
