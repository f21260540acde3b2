"""`keepwell demo`: build a realistic demo business, load it, and show its headline figures."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, progress
from keepwell.money import format_money

app = typer.Typer(
    help="A realistic demo business to explore keepwell with.",
    invoke_without_command=True,
)


class _Bars:
    """Adapts ``progress(stage, done, total)`` callbacks to one Rich bar per stage."""

    def __init__(self, bars) -> None:
        self.bars = bars
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bars.add_task(stage, total=max(total, 1))
        self.bars.update(self.tasks[stage], completed=done, total=max(total, 1))


def _print_headline(result) -> None:
    h = result.headline
    assert h is not None
    mrr = " + ".join(format_money(v, cur) for cur, v in sorted(h.mrr_minor.items())) or "0"
    rate = f"{h.churn_rate:.1%}" if h.churn_rate is not None else "n/a (no customers at start)"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column(style="bold")
    grid.add_row("customers", f"{h.customers:,} ({h.active_customers:,} active now)")
    grid.add_row("MRR now", mrr)
    grid.add_row(
        f"churn in {h.churn_month:%B %Y}",
        f"{rate}  ({h.churn_lost:,} of {h.churn_at_start:,} customers active on the 1st left)",
    )
    grid.add_row("usage events", f"{h.events:,}")
    console.print(Panel(grid, title="keepwell demo business", expand=False))
    console.print(
        "Next:\n"
        "  keepwell customers list                    who your customers are\n"
        "  keepwell customers list --industry travel  a segment hit by the crisis\n"
        "  keepwell customers show <id>               one customer's profile and timeline\n"
        "  keepwell report churn                      churn and retention by month\n"
        "  keepwell report all --html report.html     the full report with charts\n"
        "  keepwell report list                       every metric keepwell computes\n"
        "  keepwell risk train && keepwell risk score   churn risk (then: risk worklist)\n"
        "  keepwell segments install-defaults         ready-made segments (then: refresh)\n"
        "  keepwell users create --email you@example.com --name You --role admin\n"
        "  keepwell serve                             the web app on http://127.0.0.1:8000"
    )


@app.callback()
@handle_errors
def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(help="Number of customers.", min=10)] = 2_000,
    months: Annotated[int, typer.Option(help="Months of history.", min=3)] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    business: Annotated[str, typer.Option(help="saas or shop.")] = "saas",
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete this home's keepwell data first.")
    ] = False,
) -> None:
    """Build the demo business into KEEPWELL_HOME (default ./keepwell-data) and show its figures."""
    if ctx.invoked_subcommand is not None:
        return
    if business not in ("saas", "shop"):
        raise typer.BadParameter("choose saas or shop", param_hint="--business")
    from keepwell.demo import loader

    settings = load_settings()
    console.print(f"Building the demo business in [bold]{settings.home.resolve()}[/] ...")
    with progress() as bars:
        result = loader.load_demo(
            settings,
            customers=customers,
            months=months,
            seed=seed,
            business=business,  # type: ignore[arg-type]
            force_reset=reset,
            progress=_Bars(bars),
        )
    if result.already_loaded:
        console.print(
            "[yellow]This keepwell home already has data; nothing was changed.[/] "
            "Use `keepwell demo --reset` to rebuild it."
        )
    else:
        loaded = ", ".join(f"{s.kind} {s.accepted:,}" for s in result.summaries)
        console.print(f"Imported: {loaded}.")
    _print_headline(result)


@app.command("generate")
@handle_errors
def generate_files(
    out: Annotated[Path, typer.Option(help="Directory to write the import-ready files to.")],
    customers: Annotated[int, typer.Option(help="Number of customers.", min=10)] = 2_000,
    months: Annotated[int, typer.Option(help="Months of history.", min=3)] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    business: Annotated[str, typer.Option(help="saas or shop.")] = "saas",
    end: Annotated[
        str | None, typer.Option(help="End of history (YYYY-MM-DD, exclusive); default today.")
    ] = None,
    events_per_customer_day: Annotated[
        float, typer.Option(help="Scales usage volume (1.0 = realistic default).", min=0.0)
    ] = 1.0,
) -> None:
    """Write demo data as import-ready CSV/Parquet files (scales to 1M customers, 100M events)."""
    from keepwell.demo.generator import generate

    if business not in ("saas", "shop"):
        raise typer.BadParameter("choose saas or shop", param_hint="--business")
    try:
        end_day = date.fromisoformat(end) if end else None
    except ValueError:
        raise typer.BadParameter(
            f"{end!r} is not a date like 2026-11-01", param_hint="--end"
        ) from None
    with progress() as bars:
        manifest = generate(
            out,
            customers=customers,
            months=months,
            seed=seed,
            business=business,  # type: ignore[arg-type]
            end=end_day,
            events_per_customer_day=events_per_customer_day,
            progress=_Bars(bars),
        )
    table = Table(title=f"Demo files in {out}", title_justify="left")
    table.add_column("kind")
    table.add_column("rows", justify="right")
    table.add_column("path")
    for kind, path in manifest.files.items():
        table.add_row(kind, f"{manifest.rows.get(kind, 0):,}", str(path))
    console.print(table)
    console.print("Import them with `keepwell import <kind> <path>` (customers first).")
