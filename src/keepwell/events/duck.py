"""DuckDB connections and SQL quoting for the event store and its import.

DuckDB does the heavy lifting (CSV parsing, validation, Parquet writing, sorting); every connection
here is in-memory, spills to a scratch directory next to the data (never the working directory)
and counts days in the zone it is given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal_list(items: Sequence[str]) -> str:
    """``['a', 'b']`` as a SQL list of string literals."""
    return "[" + ", ".join(literal(i) for i in items) + "]"


def connect(*, scratch: Path, timezone: str = "UTC") -> duckdb.DuckDBPyConnection:
    """An in-memory connection that spills to ``scratch`` and reads naive times in ``timezone``.

    ``timezone`` must be a valid IANA name (check it before; DuckDB's error is less clear).
    """
    con = duckdb.connect(config={"temp_directory": str(scratch)})
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    con.execute(f"SET TimeZone = {literal(timezone)}")
    return con


@contextmanager
def watch_progress(
    con: duckdb.DuckDBPyConnection, report: Callable[[float], None] | None, *, every: float = 0.25
) -> Iterator[None]:
    """Call ``report(percent)`` from a helper thread while a query runs on ``con``.

    Percentages only grow; DuckDB's estimate is per query, not per byte.
    """
    if report is None:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        last = 0.0
        while not done.wait(every):
            percent = min(con.query_progress(), 100.0)
            if percent > last:  # -1 means "unknown"; never report going backwards
                last = percent
                report(percent)

    thread = threading.Thread(target=poll, name="keepwell-duckdb-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
