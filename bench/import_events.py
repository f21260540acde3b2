"""Benchmark the events import against DuckDB's own CSV -> Parquet copy of the same file.

    python3 bench/import_events.py                     # 10M rows, 100k customers
    python3 bench/import_events.py --rows 1000000 --compare-append

Generates a realistic events CSV with DuckDB (customers, ~10 event names, a year of timestamps,
some user ids, values and small JSON properties), then times, each in a fresh process:

* ``baseline``: ``COPY (SELECT * FROM read_csv(...)) TO 'x.parquet'`` -- the practical limit;
* ``import``: :func:`keepwell.events.importer.import_events` of the same file into a new store,
  with the customers as known ids (fingerprint, checks, rejects, duplicates, one commit).

It prints wall and CPU seconds, rows/s, the ratio (goal <= 2x) and each process's peak RSS.
``--compare-append`` also times the two ways to append an Arrow stream that the store could
use: ``write_deltalake`` vs DuckDB ``COPY`` + ``DeltaTable.create_write_transaction``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EVENT_NAMES = (
    "login", "page_view", "report_created", "export", "invite_sent",
    "search", "dashboard_view", "api_call", "settings_changed", "logout",
)  # fmt: skip


def generate_csv(path: Path, *, rows: int, customers: int) -> None:
    """Write ``rows`` events over ``customers`` customers and the year 2025 (DuckDB, seconds)."""
    import duckdb

    names = "[" + ", ".join(f"'{n}'" for n in EVENT_NAMES) + "]"
    with duckdb.connect() as con:
        con.execute(
            f"""
            COPY (
              SELECT
                'cus_' || lpad(CAST(hash(i) % {customers} AS VARCHAR), 6, '0') AS customer_id,
                {names}[1 + (hash(i * 7) % {len(EVENT_NAMES)})::INTEGER] AS event,
                strftime(TIMESTAMP '2025-01-01'
                         + to_microseconds((hash(i * 13) % 31536000000000)::BIGINT),
                         '%Y-%m-%dT%H:%M:%SZ') AS occurred_at,
                CASE WHEN hash(i * 17) % 4 = 0 THEN NULL
                     ELSE 'u_' || (hash(i * 19) % {customers * 5})::VARCHAR END AS user_id,
                CASE WHEN hash(i * 23) % 3 = 0 THEN NULL
                     ELSE round((hash(i * 29) % 100000) / 100.0, 2) END AS value,
                CASE WHEN hash(i * 31) % 2 = 0 THEN NULL
                     ELSE '{{"plan":"' || (['free', 'pro', 'team'])[1 + (hash(i * 37) % 3)::INTEGER]
                          || '","n":' || (hash(i * 41) % 50)::VARCHAR || '}}' END AS properties
              FROM range({rows}) AS t(i)
            ) TO '{path}' (HEADER, DELIMITER ',')
            """
        )


def customer_ids(customers: int) -> list[str]:
    return [f"cus_{i:06d}" for i in range(customers)]


# -- the timed phases (each runs in a fresh process) -------------------------------------------


def phase_baseline(csv_path: str, out: str) -> int:
    import duckdb

    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_csv('{csv_path}')) TO '{out}' (FORMAT parquet)")
    return 0


def phase_import(csv_path: str, store_path: str, customers: int) -> int:
    from keepwell.events.importer import import_events
    from keepwell.events.store import EventStore

    summary = import_events(
        Path(csv_path),
        store=EventStore(Path(store_path)),
        known_customer_ids=customer_ids(customers),
        rejects_dir=Path(store_path).parent / "rejects",
    )
    return summary.inserted


def phase_write_deltalake(parquet: str, table: str) -> int:
    import pyarrow.dataset as ds
    from deltalake import write_deltalake

    reader = ds.dataset(parquet).scanner(batch_size=256 * 1024).to_reader()
    write_deltalake(table, reader, mode="append")
    return 0


def phase_store_append(parquet: str, table: str) -> int:
    import pyarrow.dataset as ds

    from keepwell.events.store import EventStore

    reader = ds.dataset(parquet).scanner(batch_size=256 * 1024).to_reader()
    return EventStore(Path(table)).append(reader).rows


def _child(func: Callable[..., int], args: tuple[Any, ...], queue: Any) -> None:
    # load the libraries first: module import time is process start-up, not import work
    import deltalake  # noqa: F401
    import duckdb  # noqa: F401
    import pandas  # noqa: F401  (DuckDB loads it lazily on first use of Arrow data)
    import pyarrow  # noqa: F401

    import keepwell.events.importer  # noqa: F401

    started, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    result = func(*args)
    wall = time.perf_counter() - started
    end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = end.ru_utime + end.ru_stime - usage.ru_utime - usage.ru_stime
    queue.put((wall, cpu, end.ru_maxrss / 1024, result))


def timed(func: Callable[..., int], *args: Any) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MiB, result) of ``func(*args)`` in a fresh process."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(func, args, queue))
    process.start()
    outcome = queue.get()
    process.join()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--compare-append", action="store_true", help="also time append methods")
    args = parser.parse_args(argv)

    work = args.dir or Path(tempfile.mkdtemp(prefix="keepwell-events-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / "events.csv"
    try:
        started = time.perf_counter()
        generate_csv(csv_path, rows=args.rows, customers=args.customers)
        size = csv_path.stat().st_size
        print(
            f"generated {args.rows:,} rows ({size / 2**20:,.0f} MiB CSV) in "
            f"{time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.1f}"
        )
        base = timed(phase_baseline, str(csv_path), str(work / "baseline.parquet"))
        shutil.rmtree(work / "store", ignore_errors=True)
        imp = timed(phase_import, str(csv_path), str(work / "store"), args.customers)
        assert imp[3] == args.rows, f"imported {imp[3]:,} of {args.rows:,} rows"
        print(f"{'':28s} {'wall s':>8s} {'CPU s':>8s} {'rows/s':>12s} {'peak RSS':>10s}")
        for name, (wall, cpu, rss, _) in (("DuckDB CSV -> Parquet", base), ("import_events", imp)):
            print(f"{name:28s} {wall:8.2f} {cpu:8.2f} {args.rows / wall:12,.0f} {rss:7.0f} MiB")
        print(
            f"ratio import / DuckDB copy: {imp[0] / base[0]:.2f}x wall, {imp[1] / base[1]:.2f}x CPU"
            f" (goal <= 2x); load average {os.getloadavg()[0]:.1f}"
        )
        if args.compare_append:
            parquet = str(work / "baseline.parquet")
            shutil.rmtree(work / "delta-a", ignore_errors=True)
            shutil.rmtree(work / "delta-b", ignore_errors=True)
            a = timed(phase_write_deltalake, parquet, str(work / "delta-a"))
            b = timed(phase_store_append, parquet, str(work / "delta-b"))
            print("append of a streamed Arrow reader of the same rows:")
            print(f"  (a) write_deltalake                     {a[0]:6.2f} s wall {a[1]:6.2f} s CPU")
            print(
                f"  (b) DuckDB COPY + create_write_transaction {b[0]:6.2f} s wall {b[1]:6.2f} s CPU"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
