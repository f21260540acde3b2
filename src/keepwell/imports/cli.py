"""``keepwell import <kind> FILE``: load CSV/Parquet exports, one command per kind.

Thin: parse options, call :func:`keepwell.imports.service.import_file` (or the events
importer) inside one unit of work, render the summary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from keepwell.cli_support import (
    console,
    handle_errors,
    load_settings,
    progress,
    unit_of_work,
)
from keepwell.imports.mapping import ColumnMapping
from keepwell.imports.schemas import SCHEMAS
from keepwell.imports.service import KINDS, import_file, known_customer_ids, replace_timezone
from keepwell.imports.summary import ImportSummary

app = typer.Typer(
    help=(
        "Import CSV/Parquet exports. Import customers first, then subscriptions, invoices, "
        "orders, surveys, tickets and events. See docs/import.md for the columns."
    ),
    no_args_is_help=True,
)

SHOWN_REJECTS = 5

FileArg = Annotated[
    Path, typer.Argument(help="CSV file (delimiter , ; tab or |; may be .gz) or Parquet file.")
]
MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", help="TOML column mapping ([columns], [defaults], [values.*])."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="Map one column: target=Source (repeatable; wins over --mapping)."),
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option("--timezone", help="IANA zone of timestamps without an offset [default: UTC]."),
]
CurrencyOpt = Annotated[
    str | None,
    typer.Option("--currency", help="Currency of rows without one [default: from settings]."),
]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="Text encoding of a CSV file.")]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Import nothing if any row is rejected (exit code 1).")
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option("--rejects-dir", help="Where rejected rows go [default: KEEPWELL_HOME/rejects]."),
]


def _mapping(path: Path | None, pairs: list[str] | None, timezone: str | None) -> ColumnMapping:
    base = ColumnMapping.load(path) if path else None
    mapping = ColumnMapping.from_pairs(pairs or [], base=base)
    return replace_timezone(mapping, timezone) or mapping


class _LazyProgress:
    """A progress bar that appears on the first report, so an early error prints alone."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Progress = progress()
        self.task: TaskID | None = None
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self.lock:  # the events importer may report from a helper thread
            if self.task is None:
                self.bar.start()
                self.task = self.bar.add_task(self.description, total=total)
            self.bar.update(self.task, completed=done, total=total)

    def __enter__(self) -> _LazyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def render(summary: ImportSummary) -> None:
    """Print the counts, the first rejects and where all rejects went."""
    table = Table(title=escape(f"{summary.kind} from {summary.source}"), title_justify="left")
    for column in ("rows", "inserted", "updated", "unchanged", "rejected"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(n)
            for n in (
                summary.rows,
                summary.inserted,
                summary.updated,
                summary.unchanged,
                summary.rejected,
            )
        )
    )
    console.print(table)
    for note in summary.notes:
        console.print(f"[dim]note:[/] {escape(note)}")
    if summary.rejected:
        console.print(
            f"[yellow]{summary.rejected} row(s) rejected; the other rows were imported.[/]"
        )
        for reject in summary.rejects[:SHOWN_REJECTS]:
            console.print(f"  [yellow]-[/] {escape(str(reject))}")
        if len(summary.rejects) > SHOWN_REJECTS:
            console.print(f"  ... and {len(summary.rejects) - SHOWN_REJECTS} more problem(s)")
        if summary.rejects_path:
            console.print(f"Rejected rows with reasons: {escape(str(summary.rejects_path))}")


def _import_kind(kind: str) -> Callable[..., None]:
    def command(
        file: FileArg,
        mapping_file: MappingOpt = None,
        pairs: MapOpt = None,
        timezone: TimezoneOpt = None,
        currency: CurrencyOpt = None,
        encoding: EncodingOpt = "utf-8",
        strict: StrictOpt = False,
        rejects_dir: RejectsOpt = None,
    ) -> None:
        settings = load_settings()
        mapping = _mapping(mapping_file, pairs, timezone)
        with _LazyProgress(f"importing {kind}") as report, unit_of_work(settings) as session:
            summary = import_file(
                db_session=session,
                kind=kind,
                path=file,
                rejects_dir=rejects_dir or settings.rejects_dir,
                mapping=mapping,
                default_currency=currency or settings.default_currency,
                encoding=encoding,
                strict=strict,
                progress=report,
            )
        render(summary)

    return command


for _kind in KINDS:
    app.command(_kind, help=f"Import {_kind}: {SCHEMAS[_kind].description}")(
        handle_errors(_import_kind(_kind))
    )


@app.command("events", help=f"Import events: {SCHEMAS['events'].description}")
@handle_errors
def events(
    file: FileArg,
    mapping_file: MappingOpt = None,
    pairs: MapOpt = None,
    timezone: TimezoneOpt = None,
    encoding: EncodingOpt = "utf-8",
    strict: StrictOpt = False,
    rejects_dir: RejectsOpt = None,
) -> None:
    from keepwell.events.importer import import_events  # the event store loads lazily
    from keepwell.events.store import EventStore

    settings = load_settings()
    mapping = _mapping(mapping_file, pairs, timezone)
    with unit_of_work(settings) as session:
        known = known_customer_ids(db_session=session)
    with _LazyProgress("importing events (bytes read)") as report:
        summary = import_events(
            file,
            store=EventStore.from_settings(settings),
            known_customer_ids=known,
            rejects_dir=rejects_dir or settings.rejects_dir,
            mapping=mapping,
            encoding=encoding,
            strict=strict,
            progress=report,
        )
    render(summary)
