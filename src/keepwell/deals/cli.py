"""`keepwell deals ...`: the pipeline: list, create, move, won, lost, pipeline, renewals."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work
from keepwell.deals.models import DealKind
from keepwell.errors import InvalidInput
from keepwell.money import format_money, to_minor

app = typer.Typer(
    help="Deals for upsell and renewals: list, create, move, won, lost, pipeline.",
    no_args_is_help=True,
)


def _staff_id(db_session, email: str | None) -> int | None:
    from keepwell.tasks.staff import staff_by_email_or_raise

    if email is None:
        return None
    return staff_by_email_or_raise(db_session=db_session, email=email).id


def _customer_id(db_session, ref: str | None) -> int | None:
    from keepwell.customers.service import get_or_raise

    return None if ref is None else get_or_raise(db_session=db_session, ref=ref).id


def _minor(value: str, currency: str) -> int:
    try:
        amount = Decimal(value.replace(",", "").strip())
    except InvalidOperation:
        raise InvalidInput(
            f"{value!r} is not an amount", field="--value", expected="e.g. 1200 or 1200.50"
        ) from None
    if not amount.is_finite():
        raise InvalidInput(f"{value!r} is not an amount", field="--value")
    try:
        return to_minor(amount, currency)
    except Exception:  # Babel: unknown currency; the service names it properly
        return int(amount * 100)


@app.command("list")
@handle_errors
def list_command(
    stage: Annotated[str | None, typer.Option(help="Only this stage.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner's e-mail.")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer external id (or #id).")] = None,
    kind: Annotated[DealKind | None, typer.Option(help="Only this kind.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only open deals.")] = False,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
) -> None:
    """List deals by stage, then expected close."""
    from keepwell.customers.models import Customer
    from keepwell.deals import service
    from keepwell.users.models import StaffUser

    with unit_of_work(load_settings()) as db_session:
        deals = service.list_deals(
            db_session=db_session,
            stage=stage,
            owner_id=_staff_id(db_session, owner),
            customer_id=_customer_id(db_session, customer),
            kind=kind,
            open_only=open_only,
            limit=limit,
            offset=offset,
        )
        table = Table(
            title=f"Deals ({len(deals)} shown)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for col in ("id", "stage", "kind", "value", "close", "customer", "owner", "title"):
            table.add_column(
                col,
                no_wrap=col != "title",
                justify="right" if col == "value" else "left",
                overflow="fold",
            )
        for d in deals:
            owner_user = db_session.get(StaffUser, d.owner_id) if d.owner_id else None
            table.add_row(
                str(d.id),
                d.stage.name,
                d.kind.value,
                format_money(d.value_minor, d.currency),
                f"{d.expected_close_at:%Y-%m-%d}" if d.expected_close_at else "",
                db_session.get(Customer, d.customer_id).external_id,
                owner_user.email if owner_user else "",
                d.title,
            )
        console.print(table)
    if not deals:
        console.print("[dim]No deals match.[/]")


@app.command("create")
@handle_errors
def create_command(
    customer: Annotated[str, typer.Argument(help="Customer external id (or #id).")],
    title: Annotated[str, typer.Argument(help="What the deal is.")],
    value: Annotated[str, typer.Option(help="Value in major units, e.g. 1200.50.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "USD",
    kind: Annotated[DealKind, typer.Option(help="Kind of deal.")] = DealKind.upsell,
    stage: Annotated[str | None, typer.Option(help="Stage (default: the first).")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner's e-mail.")] = None,
    close: Annotated[
        str | None, typer.Option("--close", help="Expected close day YYYY-MM-DD.")
    ] = None,
) -> None:
    """Open a deal for a customer."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        deal = service.create_deal(
            db_session=db_session,
            customer_id=_customer_id(db_session, customer),
            title=title,
            value_minor=_minor(value, currency),
            currency=currency,
            kind=kind,
            stage=stage,
            owner_id=_staff_id(db_session, owner),
            expected_close_at=close,
        )
        console.print(
            f"Created deal [bold]{deal.id}[/] in {deal.stage.name}: "
            f"{format_money(deal.value_minor, deal.currency)}."
        )


@app.command("move")
@handle_errors
def move_command(
    deal_id: Annotated[int, typer.Argument(help="Deal id.")],
    stage: Annotated[str, typer.Argument(help="Stage name.")],
    reason: Annotated[str | None, typer.Option(help="Why (needed for a lost stage).")] = None,
) -> None:
    """Move a deal to another stage."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        deal = service.move_deal(db_session=db_session, deal_id=deal_id, stage=stage, reason=reason)
        console.print(f"Deal {deal.id} is now in {deal.stage.name}.")


@app.command("won")
@handle_errors
def won_command(
    deal_id: Annotated[int, typer.Argument(help="Deal id.")],
    reason: Annotated[str | None, typer.Option(help="What won it.")] = None,
) -> None:
    """Close a deal as won."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        deal = service.win_deal(db_session=db_session, deal_id=deal_id, reason=reason)
        console.print(f"Deal {deal.id} won: {format_money(deal.value_minor, deal.currency)}.")


@app.command("lost")
@handle_errors
def lost_command(
    deal_id: Annotated[int, typer.Argument(help="Deal id.")],
    reason: Annotated[str, typer.Option(help="Why it was lost.")],
) -> None:
    """Close a deal as lost, with the reason."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        deal = service.lose_deal(db_session=db_session, deal_id=deal_id, reason=reason)
        console.print(f"Deal {deal.id} lost ({deal.close_reason}).")


@app.command("pipeline")
@handle_errors
def pipeline_command(
    owner: Annotated[str | None, typer.Option(help="Only this owner's deals.")] = None,
    kind: Annotated[DealKind | None, typer.Option(help="Only this kind.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Open pipeline: deals, value and weighted value per stage and per owner."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        summary = service.pipeline_summary(
            db_session=db_session, owner_id=_staff_id(db_session, owner), kind=kind
        )
    if as_json:

        def lines(rows):
            return [
                {
                    "key": r.key,
                    "currency": r.currency,
                    "deals": r.deals,
                    "value_minor": r.value_minor,
                    "weighted_minor": r.weighted_minor,
                    "probability_pct": r.probability_pct,
                    "owner_id": r.owner_id,
                }
                for r in rows
            ]

        payload = {
            "by_stage": lines(summary.by_stage),
            "by_owner": lines(summary.by_owner),
            "totals": lines(summary.totals),
        }
        console.print_json(json.dumps(payload))
        return
    if not summary.totals:
        console.print("[dim]No open deals.[/]")
        return
    for title, rows, first in (
        ("Pipeline by stage", summary.by_stage, "stage"),
        ("Pipeline by owner", summary.by_owner, "owner"),
        ("Total", summary.totals, ""),
    ):
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column(first or "currency", no_wrap=True)
        if first == "stage":
            table.add_column("prob.", justify="right")
        for col in ("deals", "value", "weighted"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in rows:
            cells = [r.key if first else r.currency]
            if first == "stage":
                cells.append(f"{r.probability_pct}%")
            cells += [
                str(r.deals),
                format_money(r.value_minor, r.currency),
                format_money(r.weighted_minor, r.currency),
            ]
            table.add_row(*cells)
        console.print(table)


@app.command("renewals")
@handle_errors
def renewals_command(
    days: Annotated[int, typer.Option(help="Renewals within this many days.")] = 60,
    period: Annotated[
        list[str] | None, typer.Option(help="Billing period(s): month, quarter, year.")
    ] = None,
) -> None:
    """Open a renewal deal for each subscription renewing soon (safe to run again)."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        run = service.create_renewal_deals(
            db_session=db_session, days_ahead=days, periods=period or ["year"]
        )
        console.print(
            f"Created {len(run.created)} renewal deal(s); {run.existing} already existed."
        )


@app.command("show")
@handle_errors
def show_command(deal_id: Annotated[int, typer.Argument(help="Deal id.")]) -> None:
    """One deal with its stage history."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        deal = service.get_or_raise(db_session=db_session, deal_id=deal_id)
        names = {s.id: s.name for s in service.list_stages(db_session=db_session)}
        history = service.stage_history(db_session=db_session, deal_id=deal_id)
        console.rule(f"[bold]Deal {deal.id}[/] {deal.title}")
        console.print(
            f"{deal.kind.value}, {format_money(deal.value_minor, deal.currency)}, "
            f"stage {deal.stage.name} ({deal.stage.probability_pct}%)"
            + (f", closed {deal.closed_at:%Y-%m-%d}" if deal.closed_at else "")
            + (f": {deal.close_reason}" if deal.close_reason else "")
        )
        for change in history:
            start = names.get(change.from_stage_id, "") if change.from_stage_id else "created"
            why = f"  ({change.reason})" if change.reason else ""
            console.print(
                f"  {change.changed_at:%Y-%m-%d %H:%M}  {start} -> "
                f"{names.get(change.to_stage_id, '?')}{why}"
            )


@app.command("stages")
@handle_errors
def stages_command() -> None:
    """The pipeline's stages with their probability."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        for s in service.list_stages(db_session=db_session):
            console.print(
                f"{s.position:>4}  {s.name:<16} {s.probability_pct:>3}%  {s.outcome.value}"
            )


@app.command("stage")
@handle_errors
def stage_command(
    name: Annotated[str, typer.Argument(help="Stage name (created if new).")],
    probability: Annotated[int | None, typer.Option(help="Win probability, 0-100 %.")] = None,
    position: Annotated[int | None, typer.Option(help="Order (lower comes first).")] = None,
    outcome: Annotated[str | None, typer.Option(help="open, won or lost.")] = None,
) -> None:
    """Add a stage or change one's probability, position or outcome."""
    from keepwell.deals import service

    with unit_of_work(load_settings()) as db_session:
        stage = service.configure_stage(
            db_session=db_session,
            name=name,
            probability_pct=probability,
            position=position,
            outcome=outcome,
        )
        console.print(
            f"Stage {stage.name}: position {stage.position}, {stage.probability_pct}%, "
            f"{stage.outcome.value}."
        )
