"""Import usage events from a CSV file, a Parquet file or a directory of Parquet files.

The work is DuckDB's, streamed, with no Python loop per row:

1. one pass over the bytes: SHA-256 fingerprint, encoding check, line count
   (:mod:`keepwell.events.source`); a fingerprint committed before means "already imported";
2. one DuckDB query parses and checks every row (:mod:`keepwell.events.checks`) and writes the
   good ones as Parquet files into the store (not yet visible);
3. only if some rows were not written: a second pass numbers the rows and writes the rejected
   ones with their reasons to ``<rejects_dir>/events-<timestamp>-rejects.csv``;
4. duplicates are counted on the written files (they are kept: events may repeat);
5. one Delta commit adds all files together with the import's batch key.

A header-only file (or a Parquet file without rows) imports nothing and says so in the
summary's notes; an empty file (no header) is an :class:`~keepwell.errors.ImportFileError`.
A file whose every row is rejected commits nothing, so it can be imported again once fixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import numpy as np
import pyarrow as pa

from keepwell.errors import ImportFileError, InvalidInput
from keepwell.events.checks import KNOWN_TABLE, Plan, plan_import
from keepwell.events.duck import connect, ident, literal, literal_list, watch_progress
from keepwell.events.schema import COLUMNS
from keepwell.events.source import PARQUET_SUFFIXES, Source, open_source
from keepwell.events.staging import StagedBatch, StagedFile
from keepwell.events.store import EventStore
from keepwell.imports.mapping import ColumnMapping
from keepwell.imports.schemas import EVENTS
from keepwell.imports.summary import ImportSummary, Reject

MAX_REJECTS_IN_MEMORY = 1000
"""``ImportSummary.rejects`` holds at most this many; the CSV and the count have all."""

NUMPY_DUPLICATES_MAX_ROWS = 20_000_000
"""Up to this many rows, duplicate candidates are found by sorting row hashes in memory."""

__all__ = ["MAX_REJECTS_IN_MEMORY", "batch_key", "import_events"]


def import_events(
    path: Path,
    /,
    *,
    store: EventStore,
    known_customer_ids: Iterable[str] | pa.Array | None,
    rejects_dir: Path,
    mapping: ColumnMapping | None = None,
    timezone: str = "UTC",
    encoding: str = "utf-8",
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Validate ``path`` and append its good rows to ``store`` in one atomic commit.

    Args:
        path: a CSV file (optionally ``.gz``), a Parquet file or a directory of Parquet files,
            with the columns of :data:`keepwell.imports.schemas.EVENTS` (or renamed by
            ``mapping``).
        store: the event store to append to.
        known_customer_ids: external ids of existing customers; a row whose ``customer_id``
            is not among them is rejected. ``None`` skips that check.
        rejects_dir: where the CSV of rejected rows is written (only when there are some).
        mapping: column renames, defaults and value translations; its ``timezone``, if set,
            overrides ``timezone``.
        timezone: IANA zone of timestamps written without an offset.
        encoding: text encoding of a CSV file (any Python codec name).
        strict: reject the whole file (raise, write nothing) if any row is rejected.
        progress: ``progress(done, total)``, in bytes processed; may be called from a helper
            thread.

    Returns:
        The summary: ``inserted + rejected == rows``; ``skipped_file`` when the same content
        with the same options was imported before (then only the fingerprint pass reads the
        file and nothing is written).

    Raises:
        ImportFileError: the file as a whole is unusable (missing, empty, bad encoding, a
            missing required column, a malformed CSV line); nothing is written.
        InvalidInput: bad options (time zone, encoding), or any reject when ``strict``.
    """
    path = Path(path)
    zone = mapping.timezone if mapping is not None and mapping.timezone else timezone
    _check_zone(zone)
    total = 2 * max(_input_bytes(path), 1)
    report = (lambda done: progress(min(done, total), total)) if progress else None
    summary = ImportSummary(kind=EVENTS.kind, source=str(path))
    with store.scratch() as scratch:
        con = connect(scratch=scratch, timezone=zone)
        # Pushing the row checks below the projection that computes the values would compute
        # every trim, cast and JSON check twice (measured: ~25% more CPU for the load).
        con.execute("SET disabled_optimizers = 'filter_pushdown'")
        try:
            source = open_source(
                path,
                con=con,
                scratch=scratch,
                encoding=encoding,
                progress=(lambda n: report(min(n, total // 2))) if report else None,
            )
            plan = plan_import(source, mapping, known=known_customer_ids is not None)
            key = batch_key(source, mapping, zone)
            if store.has_batch(key):
                summary.skipped_file = True
                summary.notes.append(
                    "this content was imported before with the same options: nothing was imported"
                )
                return summary
            if plan.ignored:
                summary.notes.append(f"column(s) not used by events, ignored: {list(plan.ignored)}")
            if source.total_rows == 0:
                summary.notes.append("the file has no rows: nothing was imported")
                return summary
            if known_customer_ids is not None:
                _load_known(con, known_customer_ids)
            _load(
                con,
                store,
                source,
                plan,
                key,
                summary,
                rejects_dir,
                strict,
                report,
                total,
                known=known_customer_ids is not None,
            )
        finally:
            con.close()
    if progress:
        progress(total, total)
    summary.check()
    return summary


def _load(
    con: duckdb.DuckDBPyConnection,
    store: EventStore,
    source: Source,
    plan: Plan,
    key: str,
    summary: ImportSummary,
    rejects_dir: Path,
    strict: bool,
    report: Callable[[int], None] | None,
    total: int,
    *,
    known: bool,
) -> None:
    half = total // 2
    batch = store.stage()
    try:
        on_percent = (lambda p: report(half + int(half * p / 100))) if report else None
        try:
            with watch_progress(con, on_percent):
                batch.copy(con, plan.good)
        except duckdb.Error as exc:
            raise _file_error(source, exc) from None
        if known and batch.files:
            batch = _without_unknown_customers(con, store, batch)
        inserted = batch.rows
        # every line after the header became a good row: there is nothing to reject (a row
        # takes at least one line); else number the rows in a second pass to find the rejects
        complete = inserted > 0 and inserted in (source.total_rows, source.data_lines)
        if not complete:
            _write_rejects(con, source, plan, summary, rejects_dir)
        summary.rows = inserted + summary.rejected
        if summary.rows == 0:
            summary.notes.append("the file has a header but no data rows: nothing was imported")
            return
        if strict and summary.rejected:
            shown = "; ".join(str(r) for r in summary.rejects[:5])
            raise InvalidInput(
                f"{summary.rejected} of {summary.rows} row(s) of {source.path.name} were "
                f"rejected, so nothing was imported (strict mode): {shown}",
                hint=f"every rejected row and why is in {summary.rejects_path}",
            )
        if inserted == 0:
            summary.notes.append("no row was accepted: nothing was imported")
            return
        duplicates = _duplicates(con, batch.files, inserted)
        if duplicates:
            summary.notes.append(
                f"{duplicates} row(s) repeat another row of the file exactly; all were imported "
                "(events may repeat)"
            )
        result = batch.commit(batch_key=key)
    finally:
        if not batch.committed:
            batch.discard()
    if result.skipped:  # the same file was committed by another import meanwhile
        summary.rows = summary.rejected = 0
        summary.rejects.clear()
        summary.skipped_file = True
        summary.notes.append("another import of the same content finished first: nothing imported")
        return
    summary.inserted = result.rows


def _without_unknown_customers(
    con: duckdb.DuckDBPyConnection, store: EventStore, batch: StagedBatch
) -> StagedBatch:
    """``batch`` without rows of customers not in the known table (rewritten only if any).

    Checking the distinct customer ids of the written files costs a fraction of probing every
    row while parsing; the rare file with unknown customers pays for one more copy.
    """
    files = literal_list([str(f.path) for f in batch.files])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE keepwell_seen_customers AS "
        f"SELECT DISTINCT customer_id FROM read_parquet({files})"
    )
    (unknown,) = con.execute(
        "SELECT count(*) FROM keepwell_seen_customers "
        f"WHERE customer_id NOT IN (SELECT id FROM {KNOWN_TABLE})"
    ).fetchone()
    if not unknown:
        return batch
    kept = store.stage()
    kept.copy(
        con,
        f"SELECT * FROM read_parquet({files}) WHERE customer_id IN (SELECT id FROM {KNOWN_TABLE})",
    )
    batch.discard()
    return kept


def batch_key(source: Source, mapping: ColumnMapping | None, timezone: str) -> str:
    """The import's idempotency key: SHA-256 of the content and every option that shapes rows."""
    options = {
        "kind": "events/1",
        "encoding": source.encoding,
        "timezone": timezone,
        "mapping": None
        if mapping is None
        else {
            "columns": dict(mapping.columns),
            "defaults": dict(mapping.defaults),
            "values": {k: dict(v) for k, v in mapping.values.items()},
            "timezone": mapping.timezone,
        },
    }
    text = source.fingerprint + "\n" + json.dumps(options, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_zone(zone: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {zone!r}", field="timezone", expected="an IANA name, e.g. UTC"
        ) from None


def _input_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(
            p.stat().st_size for p in path.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES
        )
    return path.stat().st_size if path.exists() else 0


def _load_known(con: duckdb.DuckDBPyConnection, ids: Iterable[str] | pa.Array) -> None:
    """Register the known customer ids as a DuckDB table for the membership check."""
    try:
        if isinstance(ids, pa.Array | pa.ChunkedArray):
            array = ids.cast(pa.string())
        else:
            array = pa.array(list(ids), type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise InvalidInput(
            f"known_customer_ids must be strings: {exc}", field="known_customer_ids"
        ) from None
    con.register("keepwell_known_input", pa.table({"id": array}))
    con.execute(
        f"CREATE TEMP TABLE {KNOWN_TABLE} AS "
        "SELECT DISTINCT id FROM keepwell_known_input WHERE id IS NOT NULL"
    )
    con.unregister("keepwell_known_input")


def _write_rejects(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    plan: Plan,
    summary: ImportSummary,
    rejects_dir: Path,
) -> None:
    """Number and explain the rejected rows; write them all to CSV, keep the first in memory."""
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE keepwell_rejects AS {plan.rejects}")
    except duckdb.Error as exc:
        raise _file_error(source, exc) from None
    (count,) = con.execute("SELECT count(*) FROM keepwell_rejects").fetchone()
    if not count:
        return
    order = "file, row" if source.multi_file else "row"
    rejects_dir = Path(rejects_dir)
    rejects_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    out = rejects_dir / f"events-{stamp}-rejects.csv"
    con.execute(
        f"COPY (SELECT * EXCLUDE (keepwell_value) FROM keepwell_rejects ORDER BY {order}) "
        f"TO {literal(str(out))} (HEADER, DELIMITER ',')"
    )
    file_col = ", file" if source.multi_file else ""
    first = con.execute(
        f"SELECT row, field, reason, keepwell_value{file_col} FROM keepwell_rejects "
        f"ORDER BY {order} LIMIT {MAX_REJECTS_IN_MEMORY}"
    ).fetchall()
    summary.rejected = int(count)
    summary.rejects_path = out
    summary.rejects.extend(
        Reject(
            row=int(r[0]),
            field=r[1],
            reason=f"{r[2]} (in {r[4]})" if source.multi_file else r[2],
            value=r[3],
        )
        for r in first
    )


def _duplicates(con: duckdb.DuckDBPyConnection, files: list[StagedFile], rows: int) -> int:
    """Rows identical to an earlier row (all six columns), among the written files.

    A 64-bit hash of each row finds candidates (sorted with NumPy up to
    :data:`NUMPY_DUPLICATES_MAX_ROWS`, 8 bytes a row; by DuckDB, which can spill, above); only
    rows sharing a hash are then compared in full, so the count is exact.
    """
    cols = ", ".join(ident(c) for c in COLUMNS)
    src = f"read_parquet({literal_list([str(f.path) for f in files])})"
    if rows <= NUMPY_DUPLICATES_MAX_ROWS:
        hashes = con.execute(f"SELECT hash({cols}) AS h FROM {src}").fetchnumpy()["h"]
        hashes = np.sort(np.asarray(hashes))
        repeated = hashes[1:][hashes[1:] == hashes[:-1]]
        if not len(repeated):
            return 0
        suspects = pa.table({"h": np.unique(repeated)})
    else:
        suspects = con.execute(
            f"SELECT hash({cols}) AS h FROM {src} GROUP BY h HAVING count(*) > 1"
        ).to_arrow_table()
        if not suspects.num_rows:
            return 0
    con.register("keepwell_suspects", suspects)
    try:
        (exact,) = con.execute(
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {src} "
            f"WHERE hash({cols}) IN (SELECT h FROM keepwell_suspects) GROUP BY {cols})"
        ).fetchone()
    finally:
        con.unregister("keepwell_suspects")
    return int(exact)


def _file_error(source: Source, exc: duckdb.Error) -> ImportFileError:
    """DuckDB's reading error as one clear line (CSV errors name the line)."""
    lines = []
    for line in str(exc).splitlines():
        line = line.strip()
        if line.startswith(("Possible", "file =", "LINE ")) or (lines and not line):
            break
        if line:
            lines.append(line.removeprefix("Invalid Input Error: ").removeprefix("IO Error: "))
    message = "; ".join(lines) or type(exc).__name__
    hint = None
    if "Expected Number of Columns" in message:
        hint = (
            "every line needs as many fields as the header; quote fields that contain the "
            'delimiter with "'
        )
    elif "unicode" in message.lower():
        hint = "the file uses another encoding: pass it with --encoding, e.g. --encoding latin-1"
    return ImportFileError(f"{source.path.name}: {message}", hint=hint)
