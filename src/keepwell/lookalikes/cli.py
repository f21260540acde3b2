"""`keepwell lookalikes`: customers or prospects most like the best retained customers."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work

app = typer.Typer(
    help="Customers/prospects most similar to the best retained customers (nearest neighbours).",
)


class Candidates(StrEnum):
    customers = "customers"
    prospects = "prospects"
    all = "all"


@app.callback(invoke_without_command=True)
@handle_errors
def lookalikes(
    seed_segment: Annotated[
        list[str] | None,
        typer.Option(help="Seeds from this segment: field=value[,value] (repeatable)."),
    ] = None,
    seed: Annotated[
        list[str] | None, typer.Option(help="A seed customer's external id (repeatable).")
    ] = None,
    candidates: Annotated[
        Candidates, typer.Option(help="Rank paying customers, prospects (lead/trial) or all.")
    ] = Candidates.customers,
    limit: Annotated[int, typer.Option(help="Matches to show.")] = 20,
    neighbours: Annotated[int, typer.Option(help="Seeds each match is compared with.")] = 5,
    min_tenure_days: Annotated[
        float, typer.Option(help="Seeds need at least this tenure (days).")
    ] = 180,
    as_of: Annotated[str | None, typer.Option(help="Profile day (YYYY-MM-DD).")] = None,
) -> None:
    """Rank customers by similarity to the best retained customers of a seed segment."""
    from keepwell.lookalikes import service
    from keepwell.reports.service import parse_filters

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter(f"{as_of!r} is not a date; use YYYY-MM-DD") from None
    settings = load_settings()
    with unit_of_work(settings) as db_session:
        result = service.find_lookalikes(
            db_session=db_session,
            settings=settings,
            seeds=seed or [],
            seed_filters=parse_filters(seed_segment or []),
            candidates=candidates.value,
            limit=limit,
            neighbours=neighbours,
            min_tenure_days=min_tenure_days,
            as_of=day,
        )
    shown = ", ".join(result.seeds[:8]) + (" ..." if len(result.seeds) > 8 else "")
    console.print(f"[bold]{len(result.seeds)} seeds[/] ({result.seed_rule}): {shown}")
    table = Table(
        title=f"Most similar {result.candidates}", title_justify="left", box=box.SIMPLE_HEAD
    )
    for name in ("customer", "name", "status", "industry", "country", "plan", "similarity", "like"):
        table.add_column(name, justify="right" if name == "similarity" else "left")
    for r in result.matches.itertuples():
        table.add_row(
            r.customer_id,
            str(r.name),
            str(r.status),
            r.industry,
            r.country,
            r.plan,
            f"{r.similarity:.2f}",
            r.nearest_seed,
        )
    console.print(table)
    if result.matches.empty:
        console.print("No candidates to rank.")
