"""`keepwell clv`: fit the repeat-purchase model; rank customers by lifetime value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings
from keepwell.money import format_money

app = typer.Typer(
    help="Customer lifetime value: subscription LTV and repeat-purchase CLV (BG/NBD).",
    no_args_is_help=True,
)


class Kind(StrEnum):
    auto = "auto"
    orders = "orders"
    subscription = "subscription"


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date; use YYYY-MM-DD") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _sources():
    from keepwell.metrics.sources import open_default

    return open_default(load_settings(), refresh_rollup=False)


AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Use data before this day (YYYY-MM-DD); default now.")
]


@app.command("fit")
@handle_errors
def fit(
    as_of: AsOf = None,
    currency: Annotated[str | None, typer.Option(help="Orders in this currency.")] = None,
) -> None:
    """Fit BG/NBD + Gamma-Gamma on the completed orders and save the model."""
    from keepwell.clv import service

    settings = load_settings()
    console.print("Fitting BG/NBD + Gamma-Gamma (the first fit compiles the model: ~30 s) ...")
    result = service.fit_repeat_purchase(
        settings=settings, sources=_sources(), as_of=_as_of(as_of), currency=currency
    )
    m = result.model
    p = m.params_
    console.print(
        f"Fitted on [bold]{m.customers_}[/] customers ({m.repeat_customers_} repeat buyers), "
        f"orders up to {result.observation_end:%Y-%m-%d}, {result.currency}, "
        f"in {m.fit_seconds_:.1f} s."
    )
    console.print(
        f"  BG/NBD       r = {p['r']:.3g}, alpha = {p['alpha']:.3g}, a = {p['a']:.3g}, "
        f"b = {p['b']:.3g}  (purchase rate mean {p['r'] / p['alpha'] * 365.25:.2f} a year, "
        f"dropout probability mean {p['a'] / (p['a'] + p['b']):.2f})"
    )
    mean_spend = p["p"] * p["v"] / (p["q"] - 1) if p["q"] > 1 else float("nan")
    console.print(
        f"  Gamma-Gamma  p = {p['p']:.3g}, q = {p['q']:.3g}, v = {p['v']:.3g}  (mean spend "
        f"{format_money(round(mean_spend), result.currency)})"
    )
    v = result.values
    console.print(
        f"  mean P(alive) {v['p_alive'].mean():.2f}; 12-month CLV of all customers "
        f"{format_money(int(v['clv_minor'].sum()), result.currency)}"
    )
    for note in m.notes_:
        console.print(f"[dim]note:[/] {note}")
    console.print(f"Saved to [bold]{result.saved_to}[/]; rank customers with `keepwell clv top`.")


@app.command("top")
@handle_errors
def top(
    limit: Annotated[int, typer.Option(help="Customers to show.")] = 20,
    kind: Annotated[
        Kind, typer.Option(help="orders (BG/NBD), subscription (survival x MRR) or auto.")
    ] = Kind.auto,
    days: Annotated[int, typer.Option(help="Expected purchases over this many days.")] = 90,
    months: Annotated[int, typer.Option(help="Repeat-purchase CLV horizon in months.")] = 12,
    margin: Annotated[
        float | None,
        typer.Option(help="Profit share of revenue; default 0.8 (subscription), 1 (orders)."),
    ] = None,
    as_of: AsOf = None,
    csv: Annotated[Path | None, typer.Option(help="Write every customer's values here.")] = None,
) -> None:
    """Customers ranked by lifetime value."""
    from keepwell.clv import service

    if limit < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--limit")
    settings = load_settings()
    src = _sources()
    chosen = kind
    if kind is Kind.auto:
        orders = src.con.execute(src.orders.count())
        chosen = Kind.orders if orders else Kind.subscription
    if chosen is Kind.orders:
        df = service.repeat_purchase_values(
            settings=settings,
            sources=src,
            as_of=_as_of(as_of),
            horizon_days=days,
            months=months,
            margin=1.0 if margin is None else margin,
        )
        table = Table(
            title=f"Top customers by {months}-month CLV (BG/NBD + Gamma-Gamma)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        heads = ["customer", "orders", "P(alive)", f"purchases {days}d", "spend/order", "CLV"]
        for name in heads:
            table.add_column(name, justify="left" if name == "customer" else "right")
        for r in df.head(limit).itertuples():
            table.add_row(
                r.customer_id,
                str(int(r.frequency) + 1),
                f"{r.p_alive:.0%}",
                f"{r.expected_purchases:.2f}",
                format_money(round(r.expected_spend), r.currency),
                format_money(int(r.clv_minor), r.currency),
            )
    else:
        df = service.subscription_ltv(
            src, margin=0.8 if margin is None else margin, as_of=_as_of(as_of)
        )
        table = Table(
            title="Top customers by subscription LTV (remaining months x MRR x margin)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for name in ("customer", "MRR", "remaining months", "LTV"):
            table.add_column(name, justify="left" if name == "customer" else "right")
        for r in df.head(limit).itertuples():
            table.add_row(
                r.customer_id,
                format_money(int(r.mrr_minor), r.currency),
                f"{r.remaining_months:.1f}",
                format_money(int(r.ltv_minor), r.currency),
            )
    console.print(table)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(csv, index=False)
        console.print(f"Wrote {len(df)} rows to [bold]{csv}[/]")
