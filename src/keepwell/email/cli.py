"""`keepwell email`: send the outbox, show its status, manage suppressed addresses."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import (
    console,
    err_console,
    handle_errors,
    load_settings,
    progress,
    unit_of_work,
)
from keepwell.email import service
from keepwell.email.models import SuppressionReason
from keepwell.errors import InvalidInput

app = typer.Typer(
    help="E-mail: send queued messages over SMTP, outbox status, suppressed addresses.",
    no_args_is_help=True,
)


def _print_report(report) -> None:
    console.print(
        f"Sent [bold]{report.sent:,}[/] in {report.seconds:.1f} s ({report.rate:,.0f}/s); "
        f"retry later {report.retried}, bounced {report.bounced}, failed {report.failed}, "
        f"suppressed {report.suppressed}."
    )
    recovered = report.recovered_sent + report.recovered_requeued + report.recovered_unknown
    if recovered:
        console.print(
            f"Recovered from an interrupted sender: {report.recovered_sent} already sent, "
            f"{report.recovered_requeued} queued again, {report.recovered_unknown} unknown "
            "(marked failed, not resent)."
        )
    for error in dict.fromkeys(report.errors):
        err_console.print(f"[yellow]warning:[/] {error}")


@app.command("send")
@handle_errors
def send(
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Send at most this many messages.")
    ] = None,
    until_empty: Annotated[
        bool,
        typer.Option("--until-empty", help="Keep going (waiting for retries) until none is left."),
    ] = False,
) -> None:
    """Send the messages that are due (SMTP settings from KEEPWELL_SMTP_*)."""
    from keepwell.email import sender

    settings = load_settings()
    if until_empty and limit is not None:
        raise InvalidInput("use either --limit or --until-empty", field="--limit")
    with unit_of_work(settings) as db_session:
        queued = service.outbox_status(db_session=db_session).states["queued"]
    total = min(queued, limit) if limit is not None else queued
    with progress() as bar:
        task = bar.add_task("Sending", total=total or None)

        def show(report) -> None:
            done = report.attempted + report.suppressed
            if done > (bar.tasks[0].total or 0):
                bar.update(task, total=done)
            bar.update(task, completed=done)

        if until_empty:
            report = sender.send_until_empty(settings, on_progress=show)
        else:
            report = sender.send_due(settings, limit=limit, on_progress=show)
    _print_report(report)


@app.command("status")
@handle_errors
def status(
    campaign: Annotated[int | None, typer.Option("--campaign", help="Only this campaign.")] = None,
) -> None:
    """Messages per state, suppressed addresses, and when the next one is due."""
    with unit_of_work(load_settings()) as db_session:
        result = service.outbox_status(db_session=db_session, campaign_id=campaign)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("state")
    table.add_column("messages", justify="right")
    for state, count in result.states.items():
        table.add_row(state, f"{count:,}")
    console.print(table)
    console.print(f"Suppressed addresses: {result.suppressions:,}")
    if result.next_due_at is not None and result.states["queued"]:
        console.print(f"Next due: {result.next_due_at:%Y-%m-%d %H:%M:%S} UTC")


@app.command("suppress")
@handle_errors
def suppress(
    address: Annotated[str, typer.Argument(help="E-mail address.")],
    reason: Annotated[
        SuppressionReason, typer.Option(help="Why (default manual).")
    ] = SuppressionReason.manual,
    source: Annotated[str | None, typer.Option(help="Where this came from (free text).")] = None,
) -> None:
    """Never send to ADDRESS again (queued messages to it are suppressed)."""
    with unit_of_work(load_settings()) as db_session:
        row = service.suppress(
            db_session=db_session, address=address, reason=reason.value, source=source
        )
        console.print(f"Suppressed {row.address} ({row.reason}).")


@app.command("unsuppress")
@handle_errors
def unsuppress(address: Annotated[str, typer.Argument(help="E-mail address.")]) -> None:
    """Allow ADDRESS again."""
    with unit_of_work(load_settings()) as db_session:
        removed = service.unsuppress(db_session=db_session, address=address)
    console.print(f"{address} {'may receive e-mail again' if removed else 'was not suppressed'}.")


@app.command("suppressions")
@handle_errors
def suppressions(
    reason: Annotated[SuppressionReason | None, typer.Option(help="Only this reason.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many to show.")] = 50,
) -> None:
    """List suppressed addresses, newest first."""
    with unit_of_work(load_settings()) as db_session:
        rows = service.suppressions(
            db_session=db_session, reason=reason.value if reason else None, limit=limit
        )
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name in ("address", "reason", "since", "source"):
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(row.address, row.reason, f"{row.at:%Y-%m-%d}", row.source or "")
    console.print(table if rows else "No suppressed addresses.")


@app.command("test")
@handle_errors
def test(
    to: Annotated[str, typer.Option("--to", help="Recipient address.")],
) -> None:
    """Send one test message now, to check the SMTP settings."""
    from keepwell.email import sender

    settings = load_settings()
    with unit_of_work(settings) as db_session:
        message = service.queue_message(
            db_session=db_session,
            customer_id=None,
            to=to,
            subject="keepwell test message",
            text="This is a test message from keepwell: your SMTP settings work.",
            html="<p>This is a test message from <b>keepwell</b>: your SMTP settings work.</p>",
            kind="transactional",
        )
        if message is None:
            raise InvalidInput(f"{to} is suppressed", field="to", expected="an allowed address")
        message_id = message.id
    report = sender.send_due(settings, ids=[message_id])
    if report.sent:
        console.print(f"Sent a test message to {to} via {settings.smtp_host}:{settings.smtp_port}.")
        return
    with unit_of_work(settings) as db_session:
        row = service.get_message(db_session=db_session, message_id=message_id)
        error = row.last_error or "not sent"
        service.cancel(db_session=db_session, ids=[message_id])
    raise InvalidInput(
        f"the test message to {to} was not sent: {error}",
        hint="check KEEPWELL_SMTP_HOST, _PORT, _TLS, _USERNAME and _PASSWORD",
    )
