"""`keepwell survival`: retention curves per segment, Cox hazard ratios, remaining lifetimes."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings

app = typer.Typer(
    help="Survival analysis: Kaplan-Meier retention curves, Cox hazard ratios, lifetimes.",
    no_args_is_help=True,
)


class Method(StrEnum):
    km = "km"
    weibull = "weibull"


def _sources():
    from keepwell.metrics.sources import open_default

    return open_default(load_settings())


def _pct(value) -> str:
    return "" if value is None or value != value else f"{100 * value:.1f}%"


def _months(value) -> str:
    return "not reached" if value is None or value != value else f"{value:.1f}"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else "<0.0001"


@app.command("curves")
@handle_errors
def curves(
    by: Annotated[
        str | None, typer.Option(help="Customer attribute to compare (industry, plan, ...).")
    ] = None,
    png: Annotated[Path | None, typer.Option(help="Write the retention chart here.")] = None,
    alpha: Annotated[float, typer.Option(help="1 - confidence level of the bands.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (summary, test).")] = False,
) -> None:
    """Kaplan-Meier retention curves per segment, medians and the log-rank test."""
    from keepwell.survival import service

    result = service.retention_curves(_sources(), by=by, alpha=alpha)
    if png is not None:
        from keepwell.survival.charts import km_chart

        png.parent.mkdir(parents=True, exist_ok=True)
        fig = km_chart(result)
        fig.savefig(png)
        import matplotlib.pyplot as plt

        plt.close(fig)
    if as_json:
        summary = result.summary.astype(object).where(result.summary.notna(), None)
        payload = {
            "by": by,
            "alpha": alpha,
            "summary": summary.to_dict(orient="records"),
            "logrank": result.logrank,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    title = f"Retention by {by}" if by else "Retention"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    heads = ["segment", "customers", "churned", "median months", "3 mo", "6 mo", "12 mo", "24 mo"]
    for name in heads:
        table.add_column(name, justify="left" if name == "segment" else "right")
    for r in result.summary.to_dict(orient="records"):
        table.add_row(
            str(r["segment"]),
            str(r["customers"]),
            str(r["churned"]),
            _months(r["median_months"]),
            *[_pct(r[f"survival_{m}m"]) for m in (3, 6, 12, 24)],
        )
    console.print(table)
    if result.logrank is not None:
        lr = result.logrank
        verdict = "differ" if lr["p_value"] < 0.05 else "do not differ clearly"
        console.print(
            f"Log-rank test: chi2 = {lr['statistic']:.2f}, df = {lr['degrees_of_freedom']}, "
            f"p = {_p(lr['p_value'])} -> the segments' retention curves {verdict} (5% level)."
        )
    if png is not None:
        console.print(f"Wrote the chart to [bold]{png}[/]")


@app.command("cox")
@handle_errors
def cox(
    covariate: Annotated[
        list[str] | None,
        typer.Option(help="Customer attribute (repeatable); default plan and industry."),
    ] = None,
    penalizer: Annotated[float, typer.Option(help="L2 penalty (helps convergence).")] = 0.0,
    min_level: Annotated[
        int, typer.Option(help="Merge levels with fewer customers into (other).")
    ] = 5,
) -> None:
    """Cox proportional-hazards model: hazard ratio (HR), 95% CI and p per attribute."""
    from keepwell.survival import service

    result = service.hazard_ratios(
        _sources(),
        covariates=covariate or ["plan", "industry"],
        penalizer=penalizer,
        min_level=min_level,
    )
    table = Table(
        title=f"Hazard ratios of churn ({result.customers} customers, {result.churned} churned)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for name in ("term", "vs", "HR", "95% CI", "p"):
        table.add_column(name, justify="left" if name in ("term", "vs") else "right")
    for r in result.table.itertuples():
        style = "red" if r.p_value < 0.05 and r.hr > 1 else "green" if r.p_value < 0.05 else ""
        table.add_row(
            r.term,
            r.reference,
            f"[{style}]{r.hr:.2f}[/]" if style else f"{r.hr:.2f}",
            f"{r.hr_lower:.2f} - {r.hr_upper:.2f}",
            _p(r.p_value),
        )
    console.print(table)
    console.print(
        f"Concordance {result.concordance:.3f}. HR > 1: churns sooner than the reference; "
        "numeric attributes are per one standard deviation."
    )
    for note in result.notes:
        console.print(f"[dim]note:[/] {note}")


@app.command("lifetime")
@handle_errors
def lifetime(
    by: Annotated[
        str | None, typer.Option(help="Use each segment's own curve (e.g. plan).")
    ] = None,
    method: Annotated[Method, typer.Option(help="km (restricted to the data) or weibull.")] = (
        Method.km
    ),
    horizon_years: Annotated[float, typer.Option(help="Count lifetime up to this far.")] = 10.0,
    limit: Annotated[int, typer.Option(help="Customers to list (shortest first).")] = 15,
    csv: Annotated[Path | None, typer.Option(help="Write every active customer here.")] = None,
) -> None:
    """Median lifetime and each active customer's expected remaining lifetime."""
    from keepwell.survival import service

    src = _sources()
    curves = service.retention_curves(src, by=by)
    df = service.expected_lifetimes(
        src, by=by, method=method.value, horizon_days=horizon_years * 365.25
    )
    for r in curves.summary.to_dict(orient="records"):
        where = "" if by is None else f" ({by}={r['segment']})"
        median = r["median_months"]
        text = "not reached" if median is None or median != median else f"{median:.1f} months"
        console.print(f"  median lifetime{where}: [bold]{text}[/], {r['customers']} customers")
    if df.empty:
        console.print("No active customers.")
        return
    restricted = bool(df["restricted"].any())
    console.print(
        f"{len(df)} active customers: expected remaining lifetime mean "
        f"[bold]{df['remaining_months'].mean():.1f}[/] months, median "
        f"{df['remaining_months'].median():.1f} ({method.value}"
        f"{', restricted to the data: a lower bound' if restricted else ''})."
    )
    if restricted:
        console.print(
            "[dim]note:[/] the Kaplan-Meier curve ends with the data, so customers whose tenure "
            "is close to the longest observed lifetime get small values; --method weibull "
            "extrapolates instead."
        )
    table = Table(title="Shortest expected remaining lifetimes", box=box.SIMPLE_HEAD)
    for name in ("customer", "segment", "tenure months", "remaining months"):
        table.add_column(name, justify="left" if name in ("customer", "segment") else "right")
    for r in df.sort_values(["remaining_days", "customer_id"]).head(limit).itertuples():
        table.add_row(
            r.customer_id,
            str(r.segment),
            f"{r.tenure_days / 30.4375:.1f}",
            f"{r.remaining_months:.1f}",
        )
    console.print(table)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(csv, index=False)
        console.print(f"Wrote {len(df)} rows to [bold]{csv}[/]")
