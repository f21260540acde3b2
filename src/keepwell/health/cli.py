"""`keepwell health`: score customers' health, backtest a configuration, show a history."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work
from keepwell.health.config import HealthConfig, load_config


def _service():
    """The health service, imported on first use (scikit-learn is slow to import)."""
    from keepwell.health import service

    return service


app = typer.Typer(
    help="Customer health scores (0-100, red/yellow/green): score, backtest, history.",
    no_args_is_help=True,
)

BAND_STYLE = {"red": "bold red", "yellow": "yellow", "green": "green"}

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Health configuration TOML file.")
]


def _config(path: Path | None) -> HealthConfig:
    return load_config(path) if path is not None else HealthConfig()


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date; use YYYY-MM-DD", param_hint=option
        ) from None


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@app.command("score")
@handle_errors
def score(
    config: ConfigOption = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Snapshot day (YYYY-MM-DD); default today.")
    ] = None,
) -> None:
    """Score every active customer's health and store it (history is kept)."""
    settings = load_settings()
    cfg = _config(config)
    with unit_of_work(settings) as db_session:
        run = _service().score_health(
            db_session=db_session, settings=settings, config=cfg, as_of=_day(as_of, "--as-of")
        )
    console.print(
        f"Scored [bold]{run.scored}[/] customers as of {run.as_of} (configuration {run.config!r}):"
    )
    for band, count in run.bands.items():
        console.print(f"  [{BAND_STYLE[band]}]{band:>6}[/]  {count}")


@app.command("backtest")
@handle_errors
def backtest(
    config: ConfigOption = None,
    periods: Annotated[int, typer.Option(help="Monthly observation dates to use.")] = 6,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", help="Churn within this many days counts.")
    ] = 30,
    date_: Annotated[
        list[str] | None,
        typer.Option(
            "--date", help="Observation day YYYY-MM-DD (repeatable; overrides --periods)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """How well health ranked customers who churned next: AUC, lift, churn per band."""
    settings = load_settings()
    cfg = _config(config)
    dates = [d for d in (_day(t, "--date") for t in (date_ or [])) if d is not None]
    with unit_of_work(settings) as db_session:
        result = _service().backtest_health(
            db_session=db_session,
            settings=settings,
            config=cfg,
            dates=dates or None,
            periods=periods,
            horizon_days=horizon_days,
        )
    if as_json:
        payload = {
            "config": result.config,
            "dates": [d.isoformat() for d in result.dates],
            "horizon_days": result.horizon_days,
            "observations": result.observations,
            "churned": result.churned,
            "churn_rate": result.churn_rate,
            "auc": result.auc,
            "lowest_decile_churn_rate": result.lowest_decile_churn_rate,
            "lift": result.lift,
            "by_band": result.by_band.to_dict(orient="records"),
            "by_date": [
                {**r, "as_of": r["as_of"].isoformat()}
                for r in result.by_date.to_dict(orient="records")
            ],
            "by_component": result.by_component.to_dict(orient="records"),
        }
        typer.echo(json.dumps(payload, indent=2, default=lambda v: None))
        return
    console.print(
        f"[bold]Health backtest[/] of configuration {result.config!r}: "
        f"{len(result.dates)} dates {result.dates[0]} .. {result.dates[-1]}, "
        f"churn within {result.horizon_days} days"
    )
    console.print(
        f"  observations [bold]{result.observations}[/], churned [bold]{result.churned}[/] "
        f"({_pct(result.churn_rate)})"
    )
    console.print(f"  AUC (low health -> churn)   [bold]{_num(result.auc, 3)}[/]")
    console.print(
        f"  lowest-health decile churn  [bold]{_pct(result.lowest_decile_churn_rate)}[/]"
        f"  lift [bold]{_num(result.lift)}x[/]"
    )
    bands = Table(title="Churn per band", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("band", "customers", "churned", "churn rate"):
        bands.add_column(name, justify="left" if name == "band" else "right")
    for r in result.by_band.itertuples():
        style = BAND_STYLE[r.band]
        bands.add_row(f"[{style}]{r.band}[/]", str(r.customers), str(r.churned), _pct(r.churn_rate))
    console.print(bands)
    dates = Table(title="Per observation date", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("as of", "customers", "churned", "churn rate", "AUC"):
        dates.add_column(name, justify="left" if name == "as of" else "right")
    for r in result.by_date.itertuples():
        dates.add_row(
            str(r.as_of), str(r.customers), str(r.churned), _pct(r.churn_rate), _num(r.auc, 3)
        )
    console.print(dates)
    comps = Table(title="Each component alone", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("component", "present", "AUC"):
        comps.add_column(name, justify="left" if name == "component" else "right")
    for r in result.by_component.itertuples():
        comps.add_row(r.component, str(r.present), _num(r.auc, 3))
    console.print(comps)


@app.command("show")
@handle_errors
def show(
    customer: Annotated[str, typer.Argument(help="External id (or #internal id).")],
    limit: Annotated[int, typer.Option(help="Newest scores to show.")] = 20,
) -> None:
    """A customer's health history, newest first, with component scores."""
    settings = load_settings()
    with unit_of_work(settings) as db_session:
        cust, rows = _service().history(db_session=db_session, ref=customer, limit=limit)
        if not rows:
            console.print(
                f"{cust.external_id} ({cust.name}) has no health scores yet: "
                "run `keepwell health score`."
            )
            return
        names = list(rows[0].components)
        zone = ZoneInfo(settings.reporting_timezone)
        table = Table(
            title=f"Health of {cust.external_id} ({cust.name})",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for name in ("as of", "health", "band", *names, "config"):
            table.add_column(
                name, justify="left" if name in ("as of", "band", "config") else "right"
            )
        for r in rows:
            comps = [_num(r.components.get(n), 0) for n in names]
            table.add_row(
                r.as_of.astimezone(zone).date().isoformat(),
                f"{r.score:.1f}",
                f"[{BAND_STYLE.get(r.band, '')}]{r.band}[/]",
                *comps,
                r.config,
            )
    console.print(table)
