"""Generate a realistic, causal and reproducible demo business as import-ready files.

``generate(out_dir, ...)`` writes, for ``business="saas"``: ``customers.csv``,
``subscriptions.csv``, ``invoices.csv``, ``surveys.csv``, ``tickets.csv`` and
``events/part-00000.parquet, ...``; for ``business="shop"``: ``customers.csv``, ``orders.csv``,
``surveys.csv`` and ``events/``. Columns follow :mod:`keepwell.imports.schemas` exactly. Beside
them ``truth.csv`` (not imported) holds each customer's latent ground truth: persona, habit,
industry shock, latent health, and whether, when and *why* they churned.

Customers are simulated in chunks of :data:`CHUNK_CUSTOMERS` with vectorised numpy, each chunk
seeded from ``np.random.SeedSequence(seed).spawn(...)``, up to :data:`MAX_WORKERS` chunks at a
time in worker processes, and written in chunk order as they are done, so memory stays flat at any
size (1M customers / 100M events in < 4 GB). Same seed, ``end`` and sizes give the same bytes
(with the same numpy and pyarrow versions), whatever the number of workers. See
``docs/demo.md``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from keepwell.demo import saas_output, shop, vocab, writers
from keepwell.demo.clock import Window
from keepwell.demo.writers import CsvSink, EventSink
from keepwell.errors import InvalidInput

__all__ = ["CHUNK_CUSTOMERS", "MAX_WORKERS", "DemoManifest", "generate", "worker_count"]

CHUNK_CUSTOMERS = 20_000
"""Customers simulated together; fixed, so the output never depends on the machine."""
MAX_WORKERS = 2
"""Worker processes simulating chunks side by side (each needs up to ~1 GB)."""

Progress = Callable[[str, int, int], None]

_FILES = {
    "saas": ("customers", "subscriptions", "invoices", "surveys", "tickets"),
    "shop": ("customers", "orders", "surveys"),
}


@dataclass(frozen=True)
class DemoManifest:
    """What :func:`generate` wrote.

    Attributes:
        out_dir: the directory holding everything.
        business: ``"saas"`` or ``"shop"``.
        start, end: the simulated history [start, end) in UTC.
        files: import kind -> path (``"events"`` -> the directory of Parquet parts).
        rows: import kind (and ``"truth"``) -> number of data rows written.
        event_parts: the Parquet files under ``files["events"]``.
        truth: path of ``truth.csv`` (latent ground truth per customer; not imported).
    """

    out_dir: Path
    business: str
    start: datetime
    end: datetime
    files: dict[str, Path]
    rows: dict[str, int]
    event_parts: tuple[Path, ...]
    truth: Path


def _check(customers: int, months: int, business: str, epcd: float) -> None:
    if not isinstance(customers, int) or customers < 1:
        raise InvalidInput(
            f"cannot generate {customers!r} customers",
            field="customers",
            expected="an integer >= 1",
        )
    if not isinstance(months, int) or not 1 <= months <= 240:
        raise InvalidInput(
            f"cannot simulate {months!r} months", field="months", expected="an integer 1..240"
        )
    if business not in _FILES:
        raise InvalidInput(
            f"unknown demo business {business!r}", field="business", expected="saas or shop"
        )
    if not np.isfinite(epcd) or not 0 <= epcd <= 1_000:
        raise InvalidInput(
            f"events per customer day must be a number 0..1000, got {epcd!r}",
            field="events_per_customer_day",
            expected="0 <= value <= 1000",
        )


def generate(
    out_dir: Path,
    /,
    *,
    customers: int = 2_000,
    months: int = 24,
    seed: int = 7,
    business: Literal["saas", "shop"] = "saas",
    end: date | None = None,
    events_per_customer_day: float = 1.0,
    progress: Progress | None = None,
) -> DemoManifest:
    """Write a demo business of ``customers`` customers over ``months`` months to ``out_dir``.

    Args:
        out_dir: target directory (created; files of a previous run are replaced).
        customers: number of customers (all sign up within the window, growing over time).
        months: length of the history in calendar months, ending at ``end``.
        seed: random seed; the same seed, ``end`` and sizes give identical files.
        business: ``"saas"`` (subscriptions) or ``"shop"`` (repeat-purchase e-commerce).
        end: exclusive end of the history (midnight UTC); default today (UTC).
        events_per_customer_day: usage volume: about this many events per customer per day
            alive, on average (the volume of a SaaS customer also follows habit and health).
        progress: called as ``progress(stage, done, total)`` while working.

    Raises:
        InvalidInput: a size, business or volume out of range.
    """
    _check(customers, months, business, events_per_customer_day)
    end = end or datetime.now(UTC).date()
    window = Window.build(
        end,
        months=months,
        crisis_months=vocab.CRISIS_MONTHS_BEFORE_END,
        zones=tuple(dict.fromkeys(c[1] for c in vocab.COUNTRIES)),
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".generating-", dir=out_dir))
    try:
        rows, parts = _write(
            work,
            customers=customers,
            seed=seed,
            business=business,
            window=window,
            epcd=float(events_per_customer_day),
            progress=progress,
        )
        kinds = _FILES[business]
        for stale in {kind for both in _FILES.values() for kind in both} - set(kinds):
            (out_dir / f"{stale}.csv").unlink(missing_ok=True)  # from the other business
        for name in (*kinds, "truth"):
            (work / f"{name}.csv").replace(out_dir / f"{name}.csv")
        shutil.rmtree(out_dir / "events", ignore_errors=True)
        (work / "events").replace(out_dir / "events")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = {kind: out_dir / f"{kind}.csv" for kind in _FILES[business]}
    files["events"] = out_dir / "events"
    return DemoManifest(
        out_dir=out_dir,
        business=business,
        start=datetime.fromtimestamp(window.start, UTC),
        end=datetime.fromtimestamp(window.end, UTC),
        files=files,
        rows=rows,
        event_parts=tuple(out_dir / "events" / p.name for p in parts),
        truth=out_dir / "truth.csv",
    )


@dataclass(frozen=True)
class _Job:
    """One chunk of customers to simulate (picklable, for worker processes)."""

    index: int
    seed: np.random.SeedSequence
    first: int
    n: int
    total: int
    business: str
    window: Window
    epcd: float
    events_dir: Path
    event_batch: int
    part_rows: int


def _simulate(job: _Job) -> tuple[dict[str, pa.Table], list[tuple[Path, int]]]:
    """Simulate one chunk: its CSV rows, and its event parts written to ``events_dir``."""
    module = saas_output if job.business == "saas" else shop
    result = module.simulate(
        np.random.Generator(np.random.PCG64(job.seed)),
        first=job.first,
        n=job.n,
        total=job.total,
        window=job.window,
        events_per_customer_day=job.epcd,
        event_batch=job.event_batch,
    )
    tables = result.tables
    sink = EventSink(job.events_dir, prefix=f"chunk-{job.index:05d}", part_rows=job.part_rows)
    for batch in result.events:
        sink.write(batch)
    sink.close()
    return tables, sink.parts


def worker_count(customers: int) -> int:
    """Worker processes :func:`generate` uses for ``customers`` (1 = in this process)."""
    chunks = -(-customers // CHUNK_CUSTOMERS)
    return max(1, min(chunks, MAX_WORKERS, len(os.sched_getaffinity(0))))


def _write(
    work: Path,
    *,
    customers: int,
    seed: int,
    business: str,
    window: Window,
    epcd: float,
    progress: Progress | None,
) -> tuple[dict[str, int], list[Path]]:
    """Simulate all chunks (in worker processes when there are several) and write the files.

    Results are consumed in chunk order and event parts renamed to one running sequence, so
    the output is the same whatever the number of workers.
    """
    n_chunks = -(-customers // CHUNK_CUSTOMERS)
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    events_dir = work / "events"
    events_dir.mkdir()
    jobs = [
        _Job(
            index=c,
            seed=child,
            first=c * CHUNK_CUSTOMERS,
            n=min(CHUNK_CUSTOMERS, customers - c * CHUNK_CUSTOMERS),
            total=customers,
            business=business,
            window=window,
            epcd=epcd,
            events_dir=events_dir,
            event_batch=writers.EVENT_BATCH,
            part_rows=writers.PART_ROWS,
        )
        for c, child in enumerate(seeds)
    ]
    sinks: dict[str, CsvSink] = {}
    parts: list[Path] = []
    event_rows = 0
    if progress:
        progress("customers", 0, customers)
    workers = worker_count(customers)
    pool = (
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        if workers > 1
        else None
    )
    try:
        results = pool.map(_simulate, jobs) if pool else map(_simulate, jobs)
        for job, (tables, chunk_parts) in zip(jobs, results, strict=True):
            for name, table in tables.items():
                if name not in sinks:
                    sinks[name] = CsvSink(work / f"{name}.csv", _schema(table))
                sinks[name].write(table)
            for path, rows in chunk_parts:
                target = events_dir / f"part-{len(parts):05d}.parquet"
                path.replace(target)
                parts.append(target)
                event_rows += rows
            if progress:
                progress("customers", job.first + job.n, customers)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        for sink in sinks.values():
            sink.close()
    if not parts:
        parts.append(events_dir / "part-00000.parquet")
        writers.write_empty_part(parts[0])
    rows = {name: sink.rows for name, sink in sinks.items()}
    rows["events"] = event_rows
    return rows, parts


def _schema(table: pa.Table) -> pa.Schema:
    """The table's schema with null-typed columns (all empty in the first chunk) as strings."""
    return pa.schema(
        [
            pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
            for f in table.schema
        ]
    )
