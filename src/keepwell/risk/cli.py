"""`keepwell risk`: train and evaluate the churn-risk model, score customers, the work list.

scikit-learn and LightGBM take seconds to import, so the service is imported inside the
commands: ``keepwell --help`` and every other sub-app do not pay for it.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, progress, unit_of_work
from keepwell.money import format_money

if TYPE_CHECKING:
    from keepwell.risk.evaluate import Evaluation

app = typer.Typer(
    help="Churn risk: who is likely to leave, why, and how much revenue is at stake.",
    no_args_is_help=True,
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


HorizonOpt = Annotated[
    int, typer.Option(help="Churn within this many days after each observation date.", min=1)
]
TestOpt = Annotated[
    int, typer.Option(help="Latest monthly observation dates held out for testing.", min=1)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def _metrics_table(ev: Evaluation) -> Table:
    table = Table(
        title=(
            f"Out-of-time test: trained on {ev.train_dates[0]}..{ev.train_dates[-1]} "
            f"({ev.n_train:,} obs), tested on {ev.test_dates[0]}..{ev.test_dates[-1]} "
            f"({ev.n_test:,} obs, churn rate {ev.test_rate:.2%})"
        ),
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for name in ("model", "AUC", "PR-AUC", "top-decile lift", "Brier"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for row in ev.metrics.to_dict("records"):
        table.add_row(
            row["name"],
            _fmt(row["auc"]),
            _fmt(row["pr_auc"]),
            _fmt(row["top_decile_lift"], 2),
            _fmt(row["brier"], 4),
        )
    return table


def _calibration_table(ev: Evaluation, model: str) -> Table:
    from keepwell.risk.evaluate import MODEL_NAMES

    table = Table(
        title=f"Calibration of {MODEL_NAMES.get(model, model)} (test slice, by predicted risk)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for name in ("decile", "observations", "mean predicted", "observed churn", "churned"):
        table.add_column(name, justify="right")
    for row in ev.calibration[model].to_dict("records"):
        table.add_row(
            str(row["group"]),
            f"{row['n']:,}",
            f"{row['mean_predicted']:.2%}",
            f"{row['observed_rate']:.2%}",
            f"{row['churned']:,}",
        )
    return table


@app.command("train")
@handle_errors
def train(
    horizon_days: HorizonOpt = 30,
    test_months: TestOpt = 6,
    as_json: JsonOpt = False,
) -> None:
    """Train the churn-risk model (LightGBM) on this home's history and save it."""
    from keepwell.risk import service

    settings = load_settings()
    with progress() as bars:
        result = service.train(
            settings=settings,
            horizon_days=horizon_days,
            test_dates=test_months,
            progress=_Bars(bars),
        )
    meta = result.saved.metadata
    if as_json:
        typer.echo(json.dumps(meta, indent=2))
        return
    window = meta["training_window"]
    console.print(
        f"Trained risk model [bold]{result.model_version}[/] on {result.n_observations:,} "
        f"observations ({window['first_as_of']} to {window['last_as_of']}, "
        f"churn within {horizon_days} days: {meta['base_rate']:.2%})."
    )
    if result.evaluation is not None:
        console.print(_metrics_table(result.evaluation))
    console.print(f"Saved to {result.saved.path}")


@app.command("evaluate")
@handle_errors
def evaluate(
    horizon_days: HorizonOpt = 30,
    test_months: TestOpt = 6,
    as_json: JsonOpt = False,
) -> None:
    """Compare LightGBM with the logistic model and "days since last activity", out of time."""
    from keepwell.risk import service

    settings = load_settings()
    with progress() as bars:
        ev = service.evaluate(
            settings=settings,
            horizon_days=horizon_days,
            test_dates=test_months,
            progress=_Bars(bars),
        )
    if as_json:
        summary = ev.summary()
        summary["calibration"] = {
            name: table.to_dict("records") for name, table in ev.calibration.items()
        }
        typer.echo(json.dumps(summary, indent=2))
        return
    console.print(_metrics_table(ev))
    console.print(_calibration_table(ev, "lightgbm"))


@app.command("score")
@handle_errors
def score(
    as_of: Annotated[
        str | None, typer.Option(help="Score as of this day (YYYY-MM-DD); default: the data's end.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model version (default: newest).")] = None,
) -> None:
    """Score every active customer: churn probability, band, reasons, revenue at risk."""
    from keepwell.risk import service

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; use YYYY-MM-DD", param_hint="--as-of") from None
    settings = load_settings()
    with progress() as bars, unit_of_work(settings) as db_session:
        run = service.score_customers(
            db_session=db_session,
            settings=settings,
            as_of=day,
            model_version=model,
            progress=_Bars(bars),
        )
    b = run.bands
    console.print(
        f"Scored {run.scored:,} active customers as of {run.as_of} with model "
        f"{run.model_version}: {b['high']:,} high, {b['medium']:,} medium, {b['low']:,} low risk."
    )
    for currency, amount in sorted(run.revenue_at_risk_minor.items()):
        console.print(f"Revenue at risk (annualised): {format_money(amount, currency)}")
    if run.replaced:
        console.print(f"[dim]Replaced {run.replaced:,} scores of an earlier run for this day.[/]")


@app.command("worklist")
@handle_errors
def worklist(
    owner: Annotated[str | None, typer.Option(help="Only this owner's customers (e-mail).")] = None,
    limit: Annotated[int, typer.Option(help="How many customers.", min=1)] = 20,
) -> None:
    """Customers to call first: the latest scores ranked by revenue at risk."""
    from keepwell.risk import service

    settings = load_settings()
    with unit_of_work(settings) as db_session:
        items = service.worklist(db_session=db_session, limit=limit, owner=owner)
    if not items:
        console.print(f"No scored customers{f' owned by {owner}' if owner else ''}.")
        return
    first = items[0]
    table = Table(
        title=f"Work list as of {first.as_of:%Y-%m-%d} (model {first.model_version})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for name in ("#", "customer", "owner", "risk", "revenue at risk", "why"):
        table.add_column(name, justify="right" if name in ("#", "risk") else "left")
    for i, item in enumerate(items, 1):
        money = (
            format_money(item.revenue_at_risk_minor, item.currency)
            if item.revenue_at_risk_minor is not None
            else "-"
        )
        table.add_row(
            str(i),
            f"{item.name} ({item.external_id})",
            item.owner or "-",
            f"{item.probability:.0%} {item.band}",
            money,
            "; ".join(item.reasons) or "-",
        )
    console.print(table)


@app.command("models")
@handle_errors
def models() -> None:
    """List the saved risk models (newest last)."""
    from keepwell.risk.artifacts import list_models

    saved = list_models(load_settings())
    if not saved:
        console.print("No risk model yet: run `keepwell risk train`.")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for name in ("version", "trained on", "observations", "test AUC", "test lift"):
        table.add_column(name)
    for meta in saved:
        window = meta.get("training_window", {})
        lgbm = (meta.get("metrics") or {}).get("lightgbm", {})
        table.add_row(
            meta["model_version"],
            f"{window.get('first_as_of')}..{window.get('last_as_of')}",
            f"{meta.get('n_observations', 0):,}",
            _fmt(lgbm.get("auc", float("nan"))),
            _fmt(lgbm.get("top_decile_lift", float("nan")), 2),
        )
    console.print(table)
