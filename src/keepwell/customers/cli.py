"""`keepwell customers ...`: list, search and show customers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work
from keepwell.customers import service
from keepwell.customers.models import CustomerStatus
from keepwell.money import format_money

app = typer.Typer(help="Customers: list, search and show one.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_customers(
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Name/company/e-mail/id contains.")
    ] = None,
    industry: Annotated[str | None, typer.Option(help="Only this industry.")] = None,
    status: Annotated[CustomerStatus | None, typer.Option(help="Only this status.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner's e-mail.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only customers with this tag.")] = None,
    sort: Annotated[str, typer.Option(help="name, signup_at, external_id or industry.")] = "name",
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 25,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
) -> None:
    """List customers with their current plan and MRR."""
    flt = service.CustomerFilter(
        search=search, industry=industry, status=status, owner_email=owner, tag=tag
    )
    with unit_of_work(load_settings()) as db_session:
        page = service.get_all(
            db_session=db_session, flt=flt, sort=sort, descending=desc, limit=limit, offset=offset
        )
        table = Table(
            title=f"Customers ({page.total:,} matching)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )

        def width(values: list[str], header: str) -> int:
            return max([len(header), *map(len, values)])

        wide = console.width >= 100
        ids = [r.customer.external_id for r in page.rows]
        mrrs = [format_money(r.mrr_minor, r.currency) if r.currency else "" for r in page.rows]
        plans = [r.plan or "" for r in page.rows]
        table.add_column("id", no_wrap=True, min_width=width(ids, "id"))
        table.add_column(
            "name", overflow="ellipsis", no_wrap=True, min_width=10, max_width=28 if wide else 20
        )
        table.add_column(
            "industry", overflow="ellipsis", no_wrap=True, max_width=14 if wide else 10
        )
        if wide:
            table.add_column("owner", overflow="ellipsis", no_wrap=True, max_width=16)
        table.add_column("plan", no_wrap=True, min_width=min(width(plans, "plan"), 12))
        table.add_column("MRR", justify="right", no_wrap=True, min_width=width(mrrs, "MRR"))
        table.add_column("status", no_wrap=True, min_width=7)
        table.add_column("since", no_wrap=True, min_width=7)
        for row in page.rows:
            c = row.customer
            owner = [c.owner.email.split("@")[0] if c.owner else ""] if wide else []
            table.add_row(
                c.external_id,
                c.name,
                c.industry or "",
                *owner,
                row.plan or "",
                format_money(row.mrr_minor, row.currency) if row.currency else "",
                c.status.value,
                f"{c.signup_at:%Y-%m}",
            )
    console.print(table)
    shown_to = page.offset + len(page.rows)
    if page.total > shown_to:
        console.print(
            f"[dim]Showing {page.offset + 1}-{shown_to} of {page.total:,}; "
            f"next page: --offset {shown_to}[/]"
        )
    elif page.total == 0:
        console.print(
            "[dim]No customers match. Import some with `keepwell import customers FILE`.[/]"
        )


@app.command("show")
@handle_errors
def show_customer(
    ref: Annotated[str, typer.Argument(help="External id (or #internal-id) of the customer.")],
) -> None:
    """Show one customer: profile, subscriptions, invoices and recent timeline."""
    with unit_of_work(load_settings()) as db_session:
        ov = service.overview(db_session=db_session, ref=ref)
        c = ov.customer
        console.rule(f"[bold]{c.name}[/] [dim]{c.external_id}[/]")
        profile = Table.grid(padding=(0, 2))
        profile.add_column(style="dim")
        profile.add_column()
        for label, value in (
            ("status", c.status.value),
            ("company", c.company),
            ("e-mail", c.email),
            ("industry", c.industry),
            ("country / zone", f"{c.country or '-'} / {c.time_zone}"),
            ("signed up", c.signup_at.isoformat(timespec="minutes")),
            ("owner", f"{c.owner.name} <{c.owner.email}>" if c.owner else None),
            ("MRR now", format_money(ov.current_mrr_minor, ov.currency)),
            ("tags", ", ".join(t.name for t in c.tags)),
            ("attributes", ", ".join(f"{k}={v}" for k, v in sorted(c.attributes.items()))),
        ):
            profile.add_row(label, str(value) if value else "-")
        console.print(profile)

        subs = Table(title="Subscriptions", title_justify="left")
        for col in ("id", "plan", "MRR", "period", "started", "ended", "status", "reason"):
            subs.add_column(col)
        for s in ov.subscriptions:
            subs.add_row(
                s.external_id,
                s.plan,
                format_money(s.mrr_minor, s.currency),
                s.billing_period.value,
                s.started_at.date().isoformat(),
                s.ended_at.date().isoformat() if s.ended_at else "",
                s.status.value,
                s.cancel_reason or "",
            )
        console.print(subs)

        timeline = Table(title="Recent activity", title_justify="left")
        timeline.add_column("when")
        timeline.add_column("what")
        timeline.add_column("")
        for item in ov.timeline:
            timeline.add_row(item.occurred_at.strftime("%Y-%m-%d %H:%M"), item.kind, item.title)
        console.print(timeline)
