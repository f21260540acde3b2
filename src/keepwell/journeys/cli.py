"""`keepwell journeys ...`: list, create, enrol, show, install the ready-made journeys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work

app = typer.Typer(
    help="Journeys: multi-step sequences (onboarding, renewal reminders, win-back).",
    no_args_is_help=True,
)


def _service():
    from keepwell.journeys import service

    return service


@app.command("list")
@handle_errors
def list_command() -> None:
    """List journeys with their trigger and how many customers are in each."""
    with unit_of_work(load_settings()) as db_session:
        journeys = _service().list_journeys(db_session=db_session)
        counts = _service().enrollment_counts(db_session=db_session)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("id", "name", "trigger", "steps", "enabled", "active", "done", "exited"):
            table.add_column(col, overflow="fold")
        for j in journeys:
            trigger = j.trigger + (f": {j.trigger_value}" if j.trigger_value else "")
            table.add_row(
                str(j.id),
                j.name,
                trigger,
                str(len(j.steps)),
                "yes" if j.enabled else "no",
                *(str(counts.get((j.id, s), 0)) for s in ("active", "completed", "exited")),
            )
    console.print(table if journeys else "No journeys: `keepwell journeys install-defaults`.")


@app.command("create")
@handle_errors
def create_command(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON journey definition.")],
) -> None:
    """Create a journey from FILE (see docs/journeys.md for the format)."""
    from keepwell.automation.definitions import load_file

    definition = load_file(file)
    with unit_of_work(load_settings()) as db_session:
        journey = _service().create_journey(db_session=db_session, definition=definition)
        console.print(f"Created journey {journey.name!r} with {len(journey.steps)} step(s).")


@app.command("enrol")
@handle_errors
def enrol_command(
    journey: Annotated[str, typer.Argument(help="Journey name or id.")],
    customer: Annotated[str, typer.Argument(help="Customer external id (or #<id>).")],
    reason: Annotated[str, typer.Option(help="Why (shown on the timeline).")] = "enrolled by hand",
) -> None:
    """Enrol one customer; the first step runs on the next `keepwell automation run`."""
    from keepwell.customers.service import get_or_raise

    with unit_of_work(load_settings()) as db_session:
        found = get_or_raise(db_session=db_session, ref=customer)
        enrollment = _service().enrol(
            db_session=db_session, journey=journey, customer_id=found.id, reason=reason
        )
    if enrollment is None:
        console.print("Not enrolled: already in (or through) this journey, or it is disabled.")
    else:
        console.print(f"Enrolled customer {customer} (enrolment #{enrollment.id}).")


@app.command("show")
@handle_errors
def show_command(
    journey: Annotated[str, typer.Argument(help="Journey name or id.")],
    limit: Annotated[int, typer.Option(help="How many enrolments to list.", min=1)] = 20,
) -> None:
    """Show a journey's steps, exit conditions and latest enrolments."""
    service = _service()
    with unit_of_work(load_settings()) as db_session:
        j = service.get_journey_or_raise(db_session=db_session, name_or_id=journey)
        trigger = j.trigger + (f" ({j.trigger_value})" if j.trigger_value else "")
        console.print(f"[bold]{j.name}[/] (#{j.id}) trigger: {trigger}, enabled: {j.enabled}")
        if j.description:
            console.print(j.description)
        for step in j.steps:
            params = {k: ("***" if k == "secret" else v) for k, v in step.params.items()}
            console.print(f"  {step.position}. {step.kind} {json.dumps(params)}")
        exits = ", ".join(c.get("filter") or c["kind"] for c in j.exit_conditions) or "none"
        console.print(f"exits: {exits}")
        rows = service.enrollments(db_session=db_session, journey=j, limit=limit)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Enrolments")
        for col in ("customer", "enrolled", "status", "next step", "due", "why"):
            table.add_column(col, overflow="fold")
        for e in rows:
            table.add_row(
                f"#{e.customer_id}",
                f"{e.enrolled_at:%Y-%m-%d %H:%M}",
                e.status + (f" ({e.exit_reason})" if e.exit_reason else ""),
                str(e.position) if e.status == "active" else "",
                f"{e.due_at:%Y-%m-%d %H:%M}" if e.status == "active" else "",
                e.reason,
            )
    console.print(table if rows else "Nobody enrolled yet.")


@app.command("install-defaults")
@handle_errors
def install_defaults_command() -> None:
    """Install the ready-made journeys (idempotent)."""
    from keepwell.journeys.defaults import install_defaults

    with unit_of_work(load_settings()) as db_session:
        created = install_defaults(db_session=db_session)
    if created:
        console.print("Installed: " + ", ".join(created))
        console.print(
            "The e-mail templates are plain starting versions: preview and edit them with "
            "`keepwell templates show|preview`."
        )
    else:
        console.print("The ready-made journeys are already installed.")
