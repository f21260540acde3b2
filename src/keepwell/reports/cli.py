"""`keepwell report <metric>`: run any metric; `keepwell report all`: the full HTML report."""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, progress
from keepwell.metrics.registry import TITLES
from keepwell.reports import display, service

app = typer.Typer(
    help="Retention reports: churn, revenue, cohorts, engagement (`keepwell report list`).",
    no_args_is_help=True,
)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def date_range(from_: str | None, to: str | None) -> tuple[date, date]:
    """--from/--to as dates; default: the 12 complete months before this one."""
    today = date.today()
    try:
        end = date.fromisoformat(to) if to else today.replace(day=1)
        start = date.fromisoformat(from_) if from_ else date(end.year - 1, end.month, 1)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; use YYYY-MM-DD") from None
    return start, end


def _table(df, title: str, metric: str | None = None) -> Table:
    headers, body = display.rows_for_people(df, metric=metric)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in headers:
        table.add_column(name, justify="left" if name in ("period", "cohort") else "right")
    for cells in body:
        table.add_row(*cells)
    return table


@app.command("list")
def list_metrics() -> None:
    """List the metrics `keepwell report <metric>` can compute."""
    table = Table(title="Metrics", title_justify="left")
    table.add_column("name")
    table.add_column("what")
    table.add_column("options")
    for name, spec in service.catalogue().items():
        table.add_row(name, spec.title, ", ".join(sorted(spec.params)))
    console.print(table)


def _make_command(name: str, title: str):
    @handle_errors
    def command(
        from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
        to: Annotated[str | None, typer.Option("--to", help="End day, exclusive.")] = None,
        period: Annotated[str, typer.Option(help="day, week, month or quarter.")] = "month",
        segment: Annotated[
            list[str] | None, typer.Option(help="Filter field=value[,value] (repeatable).")
        ] = None,
        by: Annotated[
            list[str] | None, typer.Option(help="Break down by a customer field.")
        ] = None,
        param: Annotated[
            list[str] | None, typer.Option(help="Metric option name=value (repeatable).")
        ] = None,
        fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    ) -> None:
        from keepwell.metrics.sources import open_default

        start, end = date_range(from_, to)
        src = open_default(load_settings())
        df = service.run_metric(
            src,
            name,
            start=start,
            end=end,
            period=period,
            filters=service.parse_filters(segment or []),
            by=by or [],
            **service.parse_params(param or []),
        )
        if fmt is Format.json:
            typer.echo(json.dumps(service.to_records(df), indent=2))
        elif fmt is Format.csv:
            typer.echo(df.to_csv(index=False), nl=False)
        else:
            console.print(_table(df, f"{title}, {start} to {end} by {period}", name))

    command.__doc__ = f"{title}."
    return command


for _name, _title in TITLES.items():
    app.command(_name)(_make_command(_name, _title))


@app.command("all")
@handle_errors
def report_all(
    html: Annotated[
        Path | None, typer.Option(help="Write the standalone HTML report here.")
    ] = None,
    png: Annotated[
        Path | None, typer.Option(help="Write every chart as PNG into this folder.")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End day, exclusive.")] = None,
    period: Annotated[str, typer.Option(help="day, week, month or quarter.")] = "month",
    segment: Annotated[str, typer.Option(help="Customer field for segment charts.")] = "industry",
) -> None:
    """The whole retention report: headline figures, charts and tables."""
    from keepwell.metrics.sources import open_default
    from keepwell.reports import full
    from keepwell.reports import html as html_render

    if html is None and png is None:
        raise typer.BadParameter("give --html FILE and/or --png DIR", param_hint="--html")
    start, end = date_range(from_, to)
    src = open_default(load_settings())
    with progress() as bars:
        task = bars.add_task("computing metrics", total=1)

        def advance(_stage: str, done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        report = full.build_report(
            src, start=start, end=end, period=period, segment=segment, progress=advance
        )
    for kpi in report.kpis:
        console.print(f"  [dim]{kpi.label:>16}[/]  [bold]{kpi.value}[/]  [dim]{kpi.note}[/]")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(html_render.render(report), encoding="utf-8")
        console.print(f"Wrote the HTML report to [bold]{html}[/]")
    if png is not None:
        written = report.write_pngs(png)
        console.print(f"Wrote {len(written)} charts to [bold]{png}[/]")


@app.command("warm")
@handle_errors
def report_warm(
    months: Annotated[int, typer.Option(help="Months the dashboard shows.", min=1, max=120)] = 12,
    period: Annotated[str, typer.Option(help="week, month or quarter.")] = "month",
) -> None:
    """Precompute the web dashboard (metrics and charts) for the current data."""
    from keepwell.cli_support import open_engine
    from keepwell.errors import InvalidInput
    from keepwell.reports import cache

    if period not in cache.PERIODS:
        raise InvalidInput(f"period {period!r}", field="period", expected=", ".join(cache.PERIODS))
    settings = load_settings()
    engine = open_engine(settings)
    try:
        computed = cache.warm(settings, engine, ranges=[(months, period)])
    finally:
        engine.dispose()
    what = f"computed {computed} results" if computed else "everything was cached already"
    console.print(f"Dashboard for the last {months} months per {period}: {what}.")
