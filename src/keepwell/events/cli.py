"""`keepwell events ...`: the usage-event store's size, compaction and clean-up."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from keepwell.cli_support import console, err_console, handle_errors, load_settings
from keepwell.events.store import DEFAULT_RETENTION_HOURS, EventStore

app = typer.Typer(
    help="The usage-event store (a Delta Lake table): size, compaction, clean-up.",
    no_args_is_help=True,
)


def _size(num: int) -> str:
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError  # pragma: no cover


@app.command("info")
@handle_errors
def info() -> None:
    """Show the store's rows, files, size, version and date range."""
    store = EventStore.from_settings(load_settings())
    facts = store.info()
    table = Table(title="Event store", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("path", str(facts.path))
    if not facts.exists:
        table.add_row("state", "empty (no events imported yet)")
        console.print(table)
        return
    table.add_row("rows", f"{facts.rows:,}")
    table.add_row("files", f"{facts.files:,}")
    table.add_row("size", _size(facts.bytes))
    table.add_row("version", str(facts.version))
    first = facts.first_at.isoformat() if facts.first_at else "-"
    last = facts.last_at.isoformat() if facts.last_at else "-"
    table.add_row("first event", first)
    table.add_row("last event", last)
    console.print(table)


@app.command("compact")
@handle_errors
def compact() -> None:
    """Rewrite small and newly appended files into big ones sorted by customer and time."""
    store = EventStore.from_settings(load_settings())
    with err_console.status("Compacting the event store..."):
        result = store.compact()
    if result.version is None:
        console.print("Nothing to compact.")
        return
    console.print(
        f"Compacted {result.rows:,} events: {result.files_removed:,} file(s) "
        f"({_size(result.bytes_before)}) -> {result.files_added:,} file(s) "
        f"({_size(result.bytes_after)}), version {result.version}. "
        "The old files are deleted by `keepwell events vacuum` after the retention."
    )


@app.command("vacuum")
@handle_errors
def vacuum(
    retention_hours: Annotated[
        int,
        typer.Option(
            min=0,
            help="Delete only files unused for at least this long. Keep it longer than any "
            "query or import that may be running.",
        ),
    ] = DEFAULT_RETENTION_HOURS,
) -> None:
    """Delete files replaced by compaction and leftovers of failed imports."""
    store = EventStore.from_settings(load_settings())
    deleted = store.vacuum(retention_hours=retention_hours)
    console.print(f"Deleted {deleted:,} file(s) unused for more than {retention_hours} hour(s).")
