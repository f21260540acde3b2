"""Benchmark keepwell's analytics engine for speed and correctness on realistic demo data.

    python3 bench/metrics.py --customers 100000 --events-per-customer-day 0.45   # ~10M events
    python3 bench/metrics.py --customers 1000000 --skip-pandas                   # ~105M events

Steps, each in a fresh process (its own wall time and peak RSS):

1. ``generate``: the SaaS demo business (``keepwell.demo.generator.generate``);
2. ``load``: a new keepwell home (SQLite + event store) filled through keepwell's import path,
   as ``keepwell.demo.loader.load_demo`` does (``import_file`` per kind, ``import_events``);
3. ``rebuild``: the daily rollup built from scratch (``Rollup.rebuild``);
4. ``keepwell``: every metric of the catalogue (what ``keepwell report all`` shows) for 12
   monthly periods ending at the data's end, through ``open_default`` (DuckDB + rollup; timed
   twice: the first open after the import writes the operational snapshot, the second is what
   every later report pays);
   ``report_all``: what ``keepwell report all --html FILE`` runs (open_default, the report's
   12 metrics, its charts and the HTML) in one fresh process;
5. ``sql``: a hand-written DuckDB SQL suite over the raw event Parquet (``metrics_sql``);
6. ``pandas``: the same metrics in plain pandas (``metrics_pandas``; <= 20M events);
7. ``incremental``: one more day of events appended (the last day's events a day later),
   ``Rollup.refresh`` timed against a full ``Rollup.rebuild``, and the next report checked.

Then the raw-SQL and pandas results are compared with keepwell's (OK / MISMATCH with the exact
difference) and a summary is printed (``--json FILE`` writes it all). The work directory is
deleted unless ``--keep``; ``--reuse`` (with ``--work``) skips steps that finished before.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from metrics_compare import Check, compare
from metrics_plan import EVENT_METRICS, Plan, Stopwatch

OPERATIONAL = ("customers", "subscriptions", "invoices", "orders", "surveys", "tickets")
PANDAS_MAX_EVENTS = 20_000_000
GOAL_SPEEDUP = 5.0
GOAL_REFRESH_SHARE = 0.05
GOAL_RSS_MIB = 4 * 1000**3 / 2**20  # 4 GB


# -- running a step in a fresh process -----------------------------------------------------------


def _peak_mib() -> dict[str, float]:
    """Peak RSS of this process and of its largest finished child, in MiB (Linux: KiB)."""
    return {
        "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _child(func: Callable[..., Any], args: tuple[Any, ...], conn: Any) -> None:
    try:
        result = func(*args)
        conn.send(("ok", result, _peak_mib()))
    except BaseException:
        conn.send(("error", traceback.format_exc(), _peak_mib()))
    finally:
        conn.close()


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return out


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def run_step(
    func: Callable[..., Any], *args: Any, max_rss_mib: float | None = None
) -> tuple[Any, dict[str, float]]:
    """``func(*args)`` in a fresh (spawned) process: (its result, its peak RSS in MiB).

    With ``max_rss_mib``, the step (and its children) is killed when their RSS together
    exceeds it: the machine is shared, and DuckDB may use up to 80 % of its memory.
    """
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(func, args, send))
    process.start()
    send.close()
    over = None
    while not receive.poll(0.5):
        if not process.is_alive():
            break
        pids = _tree(process.pid)
        rss = _rss_mib(pids)
        if max_rss_mib is not None and rss > max_rss_mib:
            over = rss
            for p in reversed(pids):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            break
    try:
        status, result, peak = receive.recv()
    except EOFError:
        process.join()
        if over is not None:
            raise MemoryError(
                f"{func.__name__} was stopped at {over:,.0f} MiB RSS (limit {max_rss_mib:,.0f})"
            ) from None
        raise RuntimeError(f"{func.__name__} died (exit code {process.exitcode})") from None
    process.join()
    if status == "error":
        raise RuntimeError(f"{func.__name__} failed:\n{result}")
    return result, peak


def _settings(home: str, timezone: str) -> Any:
    from keepwell.config import Settings

    return Settings(
        home=Path(home), database_url=None, events_path=None, reporting_timezone=timezone
    )


# -- the steps (run in child processes) ---------------------------------------------------------


def step_generate(out: str, customers: int, months: int, epcd: float, end: str) -> dict:
    from keepwell.demo.generator import generate

    started = time.perf_counter()
    manifest = generate(
        Path(out),
        customers=customers,
        months=months,
        seed=7,
        business="saas",
        end=date.fromisoformat(end),
        events_per_customer_day=epcd,
    )
    return {
        "seconds": time.perf_counter() - started,
        "rows": manifest.rows,
        "event_parts": len(manifest.event_parts),
        "bytes": sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file()),
        "files": {k: str(v) for k, v in manifest.files.items()},
    }


def step_load(home: str, timezone: str, files: dict[str, str]) -> dict:
    """Migrate a new SQLite store and import every file, as ``load_demo`` does."""
    from keepwell import migrate
    from keepwell.db import engine_from_settings, session_scope
    from keepwell.events.importer import import_events
    from keepwell.events.store import EventStore
    from keepwell.imports import service as import_service

    settings = _settings(home, timezone)
    engine = engine_from_settings(settings)
    out: dict[str, dict] = {}
    try:
        with Stopwatch() as watch:
            migrate.upgrade(engine)
        out["migrate"] = {"seconds": watch.wall, "cpu": watch.cpu, "rows": 0}
        for kind in OPERATIONAL:
            if kind not in files:
                continue
            with Stopwatch() as watch, session_scope(engine) as db_session:
                summary = import_service.import_file(
                    db_session=db_session,
                    kind=kind,
                    path=Path(files[kind]),
                    rejects_dir=settings.rejects_dir,
                    default_currency=settings.default_currency,
                )
            out[kind] = {
                "seconds": watch.wall,
                "cpu": watch.cpu,
                "rows": summary.inserted,
                "rejected": summary.rejected,
            }
        with Stopwatch() as watch:
            with session_scope(engine) as db_session:
                known = import_service.known_customer_ids(db_session=db_session)
            summary = import_events(
                Path(files["events"]),
                store=EventStore.from_settings(settings),
                known_customer_ids=known,
                rejects_dir=settings.rejects_dir,
            )
        out["events"] = {
            "seconds": watch.wall,
            "cpu": watch.cpu,
            "rows": summary.inserted,
            "rejected": summary.rejected,
        }
    finally:
        engine.dispose()
    rejected = {k: v.get("rejected", 0) for k, v in out.items() if v.get("rejected")}
    if rejected:
        raise RuntimeError(f"the import rejected rows: {rejected} (see {settings.rejects_dir})")
    return out


def step_rebuild(home: str, timezone: str) -> dict:
    from keepwell.events.store import EventStore
    from keepwell.metrics.rollup import Rollup

    settings = _settings(home, timezone)
    rollup = Rollup.from_settings(settings)
    with Stopwatch() as watch:
        result = rollup.rebuild(EventStore.from_settings(settings))
    info = rollup.info()
    return {
        "seconds": watch.wall,
        "cpu": watch.cpu,
        "events_read": result.events_read,
        "rows_written": result.rows_written,
        "files": info.files,
        "event_types": info.event_types,
    }


def step_keepwell(home: str, timezone: str, plan_data: dict, out_dir: str) -> dict:
    """Every catalogue metric through ``open_default`` and ``run_metric``."""
    from keepwell.metrics.daily import reads_rollup
    from keepwell.metrics.registry import all_metrics
    from keepwell.metrics.sources import open_default
    from keepwell.reports.service import run_metric

    plan = _plan(plan_data)
    settings = _settings(home, timezone)
    catalogue = all_metrics()  # imports every metric module before timing
    with Stopwatch() as cold:  # the first open after an import writes the operational snapshot
        src = open_default(settings)
    src.con.disconnect()
    with Stopwatch() as opened:
        src = open_default(settings)
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    rows: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for name, spec in catalogue.items():
        empty = [
            t
            for t in sorted(spec.needs)
            if t != "events" and src.con.execute(src.tables[t].count()) == 0
        ]
        if empty:
            skipped[name] = f"no {', '.join(empty)} in a SaaS business"
            continue
        extra = {"as_of": plan.as_of} if name == "features" else {}
        with Stopwatch() as watch:
            df = run_metric(src, name, start=plan.start, end=plan.end, period="month", **extra)
        times[name], cpu[name] = watch.wall, watch.cpu
        rows[name] = len(df)
        if name in EVENT_METRICS:
            df.to_parquet(Path(out_dir) / f"{name}.parquet", index=False)
    return {
        "open_default": opened.wall,
        "open_default_cpu": opened.cpu,
        "open_default_cold": cold.wall,
        "open_default_cold_cpu": cold.cpu,
        "times": times,
        "cpu": cpu,
        "rows": rows,
        "skipped": skipped,
        "reads_rollup": reads_rollup(src),
    }


def step_report_all(home: str, timezone: str, plan_data: dict, out_dir: str) -> dict:
    """What ``keepwell report all --html FILE`` runs: ``open_default``, ``build_report`` (its
    12 metrics, usage frequency by industry, the charts) and the HTML, for the plan's months."""
    from keepwell.metrics.sources import open_default
    from keepwell.reports import full, html

    plan = _plan(plan_data)
    settings = _settings(home, timezone)
    with Stopwatch() as watch:
        src = open_default(settings)
        report = full.build_report(src, start=plan.start, end=plan.end, period="month")
        page = html.render(report)
        (Path(out_dir) / "report.html").write_text(page, encoding="utf-8")
    charts = sum(len(s.charts) for s in report.sections)
    return {"seconds": watch.wall, "cpu": watch.cpu, "charts": charts, "html_bytes": len(page)}


def step_sql(home: str, timezone: str, plan_data: dict, out_dir: str) -> dict:
    import metrics_sql

    from keepwell.events.store import EventStore

    files = EventStore.from_settings(_settings(home, timezone)).files()
    return metrics_sql.run_suite(_plan(plan_data), files, Path(out_dir))


def step_pandas(home: str, timezone: str, plan_data: dict, out_dir: str) -> dict:
    import metrics_pandas

    from keepwell.events.store import EventStore

    files = EventStore.from_settings(_settings(home, timezone)).files()
    return metrics_pandas.run_suite(_plan(plan_data), files, Path(out_dir))


def _day_report(settings: Any, engine: Any, day: date) -> tuple[dict, float]:
    """keepwell's active_customers for the single local day ``day``, through open_default."""
    from keepwell.metrics.sources import open_default
    from keepwell.reports.service import run_metric

    started = time.perf_counter()
    src = open_default(settings, engine=engine)
    df = run_metric(src, "active_customers", start=day, end=day + timedelta(days=1), period="day")
    row = df.iloc[0]
    return {"dau": float(row["dau"]), "period_actives": int(row["period_actives"])}, (
        time.perf_counter() - started
    )


def step_incremental(home: str, timezone: str, end: str, work: str) -> dict:
    """Append one more day (the last day's events, a day later), refresh the rollup, time a
    full rebuild, and check that the next report shows the new day.

    The report uses ``open_default`` over an empty operational store (active_customers reads
    only events and the rollup; reading the real store again costs minutes at 1M customers).
    """
    import duckdb

    from keepwell import migrate
    from keepwell.db import make_engine
    from keepwell.events.store import EventStore
    from keepwell.metrics.rollup import Rollup

    settings = _settings(home, timezone)
    store = EventStore.from_settings(settings)
    rollup = Rollup.from_settings(settings)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    store.register(con, "events")
    # the day after the latest event (the history's last day, or the day a run before this one
    # appended: a rerun with --reuse appends yet another day)
    (latest,) = con.execute("SELECT max(occurred_at) FROM events").fetchone()
    last = max(date.fromisoformat(end) - timedelta(days=1), latest.astimezone(UTC).date())
    new_day = last + timedelta(days=1)
    empty_db = Path(work) / "empty-operational.db"
    empty_db.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{empty_db}")
    migrate.upgrade(engine)
    before, _ = _day_report(settings, engine, new_day)

    day = con.execute(
        "SELECT customer_id, event, occurred_at + INTERVAL 1 DAY AS occurred_at, user_id, "
        "value, properties FROM events WHERE occurred_at >= ? AND occurred_at < ?",
        [
            datetime(last.year, last.month, last.day).isoformat() + "+00:00",
            datetime(new_day.year, new_day.month, new_day.day).isoformat() + "+00:00",
        ],
    ).to_arrow_table()
    with Stopwatch() as append:
        appended = store.append(day, batch_key=f"bench-metrics-{new_day.isoformat()}")
    with Stopwatch() as refresh:
        refreshed = rollup.refresh(store)

    after, report_s = _day_report(settings, engine, new_day)
    store.register(con, "events")  # the snapshot with the new day
    (expected,) = con.execute(
        f"SELECT count(DISTINCT customer_id) FROM events "
        f"WHERE CAST(timezone('{timezone}', occurred_at) AS DATE) = DATE '{new_day}'"
    ).fetchone()
    con.close()
    engine.dispose()

    with Stopwatch() as rebuild:
        rebuilt = rollup.rebuild(store)
    return {
        "day": new_day.isoformat(),
        "rows": appended.rows,
        "append_seconds": append.wall,
        "refresh_seconds": refresh.wall,
        "refresh_cpu": refresh.cpu,
        "refresh_mode": refreshed.mode,
        "refresh_files_read": len(refreshed.files_read),
        "refresh_events_read": refreshed.events_read,
        "rebuild_seconds": rebuild.wall,
        "rebuild_cpu": rebuild.cpu,
        "rebuild_events_read": rebuilt.events_read,
        "report_before": before,
        "report_after": after,
        "report_seconds": report_s,
        "expected_actives": int(expected),
    }


def _plan(data: dict) -> Plan:
    return Plan(
        **{
            **data,
            "start": date.fromisoformat(data["start"]),
            "end": date.fromisoformat(data["end"]),
            "event_types": tuple(data["event_types"]),
        }
    )


# -- orchestration -------------------------------------------------------------------------------


class Steps:
    """Runs steps in child processes; with ``reuse``, returns a finished step's saved result."""

    def __init__(self, work: Path, *, reuse: bool, max_rss_mib: float | None) -> None:
        self.dir = work / "steps"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.reuse = reuse
        self.max_rss_mib = max_rss_mib
        self.peaks: dict[str, dict[str, float]] = {}

    def run(self, name: str, func: Callable[..., Any], *args: Any) -> Any:
        saved = self.dir / f"{name}.json"
        if self.reuse and saved.exists():
            record = json.loads(saved.read_text())
            print(f"[{name}] reused the result of an earlier run")
        else:
            print(f"[{name}] running ... (load average {os.getloadavg()[0]:.1f})", flush=True)
            started = time.perf_counter()
            result, peak = run_step(func, *args, max_rss_mib=self.max_rss_mib)
            record = {"result": result, "peak_mib": peak, "wall": time.perf_counter() - started}
            saved.write_text(json.dumps(record, default=str))
        self.peaks[name] = record["peak_mib"]
        return record["result"]


def _machine() -> dict:
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    import deltalake
    import duckdb
    import ibis
    import pyarrow

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "ibis": ibis.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "deltalake": deltalake.__version__,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt_pair(pair: tuple[float | None, float | None]) -> str:
    wall, cpu = pair
    return f"{'-':>13s}" if wall is None else f"{wall:6.1f} /{cpu:6.1f}"


def _fmt_ratios(
    other: tuple[float | None, float | None], keepwell: tuple[float | None, float | None]
) -> str:
    wall, cpu = _ratio(other[0], keepwell[0]), _ratio(other[1], keepwell[1])
    return f"{'-':>11s}" if wall is None or cpu is None else f"{wall:4.1f}x/{cpu:4.1f}x"


def check_all(work: Path, plan: Plan, against: str) -> list[Check]:
    """Compare every event metric of ``against`` ("sql" or "pandas") with keepwell's."""
    checks = []
    for name in EVENT_METRICS:
        kw = pd.read_parquet(work / "results" / "keepwell" / f"{name}.parquet")
        other = pd.read_parquet(work / "results" / against / f"{name}.parquet")
        checks.append(compare(name, kw, other, plan, against=against))
    return checks


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--events-per-customer-day",
        type=float,
        default=0.45,
        help="usage volume; 0.45 gives ~105M events for 1M customers over 24 months",
    )
    parser.add_argument("--months", type=int, default=24, help="history length")
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=date(2026, 10, 1),
        help="end of the history (exclusive); the report covers the 12 months before",
    )
    parser.add_argument("--timezone", default="UTC", help="reporting time zone")
    parser.add_argument("--work", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--reuse", action="store_true", help="skip steps finished in --work before")
    parser.add_argument("--skip-pandas", action="store_true", help="do not run the pandas suite")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=12.0,
        help="stop a step whose processes use more memory than this (the machine is shared)",
    )
    args = parser.parse_args(argv)
    if args.reuse and args.work is None:
        parser.error("--reuse needs --work")
    return args


def run_steps(args: argparse.Namespace, work: Path, steps: Steps) -> dict[str, Any]:
    """Run every step, printing what each measured; return their results."""
    home, data, tz = str(work / "home"), str(work / "data"), args.timezone
    gen = steps.run(
        "generate", step_generate, data, args.customers, args.months,
        args.events_per_customer_day, args.end.isoformat(),
    )  # fmt: skip
    print(
        f"  {gen['rows']['events']:,} events, {gen['rows']['customers']:,} customers, "
        f"{gen['bytes'] / 2**30:.2f} GiB in {gen['seconds']:.1f} s"
    )
    loaded = steps.run("load", step_load, home, tz, gen["files"])
    for kind, figures in loaded.items():
        print(
            f"  load {kind:14s} {figures['rows']:>12,} rows {figures['seconds']:8.1f} s  "
            f"CPU {figures['cpu']:8.1f} s"
        )
    built = steps.run("rebuild", step_rebuild, home, tz)
    print(
        f"  rollup rebuild: {built['events_read']:,} events -> {built['rows_written']:,} "
        f"customer-days in {built['seconds']:.1f} s (CPU {built['cpu']:.1f} s)"
    )
    plan = Plan.for_end(args.end, timezone=tz, event_types=tuple(built["event_types"]))
    results = work / "results"
    for name in ("keepwell", "sql", "pandas"):
        (results / name).mkdir(parents=True, exist_ok=True)
    kw = steps.run("keepwell", step_keepwell, home, tz, plan.to_dict(), str(results / "keepwell"))
    print(
        f"  open_default {kw['open_default']:.2f} s (CPU {kw['open_default_cpu']:.2f} s); "
        f"reads the rollup: {kw['reads_rollup']}; the first open after the import (writes "
        f"the operational snapshot) {kw['open_default_cold']:.2f} s "
        f"(CPU {kw['open_default_cold_cpu']:.2f} s)"
    )
    for name, seconds in kw["times"].items():
        print(
            f"  keepwell {name:18s} {seconds:8.2f} s  CPU {kw['cpu'][name]:8.2f} s  "
            f"({kw['rows'][name]:,} rows)"
        )
    command = steps.run(
        "report_all", step_report_all, home, tz, plan.to_dict(), str(results / "keepwell")
    )
    print(
        f"  keepwell report all (the command: open, 12 metrics, {command['charts']} charts, "
        f"HTML) {command['seconds']:.2f} s  CPU {command['cpu']:.2f} s"
    )
    sql = steps.run("sql", step_sql, home, tz, plan.to_dict(), str(results / "sql"))
    for name, seconds in sql["times"].items():
        print(f"  raw SQL  {name:18s} {seconds:8.2f} s  CPU {sql['cpu'][name]:8.2f} s")
    events = loaded["events"]["rows"]
    pandas_ = None
    if not args.skip_pandas and events <= PANDAS_MAX_EVENTS:
        pandas_ = steps.run(
            "pandas", step_pandas, home, tz, plan.to_dict(), str(results / "pandas")
        )
        for name, seconds in pandas_["times"].items():
            print(f"  pandas   {name:18s} {seconds:8.2f} s  CPU {pandas_['cpu'][name]:8.2f} s")
    else:
        why = "--skip-pandas" if args.skip_pandas else f"{events:,} events > 20M"
        print(f"[pandas] skipped ({why})")
    inc = steps.run("incremental", step_incremental, home, tz, args.end.isoformat(), str(work))
    return {
        "plan": plan,
        "generate": gen,
        "load": loaded,
        "rebuild": built,
        "keepwell": kw,
        "report_all": command,
        "sql": sql,
        "pandas": pandas_,
        "incremental": inc,
    }


def evaluate(res: dict[str, Any], work: Path, peaks: dict[str, dict[str, float]]) -> dict:
    """Checks, totals and goals of a run."""
    plan, kw, sql, pandas_, inc, command = (
        res["plan"], res["keepwell"], res["sql"], res["pandas"], res["incremental"],
        res["report_all"],
    )  # fmt: skip
    checks = check_all(work, plan, "sql") + (check_all(work, plan, "pandas") if pandas_ else [])
    kw_metrics = sum(kw["times"].values())
    totals = {
        "open_default": kw["open_default"],
        "keepwell_metrics": kw_metrics,
        "keepwell_catalogue": kw["open_default"] + kw_metrics,
        "keepwell_report_all": command["seconds"],
        "keepwell_event_metrics": sum(kw["times"][n] for n in EVENT_METRICS),
        "sql": sum(sql["times"].values()),
        "pandas": sum(pandas_["times"].values()) if pandas_ else None,
        "pandas_load": pandas_["times"]["load"] if pandas_ else None,
    }
    cpu_metrics = sum(kw["cpu"].values())
    totals_cpu = {
        "open_default": kw["open_default_cpu"],
        "keepwell_metrics": cpu_metrics,
        "keepwell_catalogue": kw["open_default_cpu"] + cpu_metrics,
        "keepwell_report_all": command["cpu"],
        "keepwell_event_metrics": sum(kw["cpu"][n] for n in EVENT_METRICS),
        "sql": sum(sql["cpu"].values()),
        "pandas": sum(pandas_["cpu"].values()) if pandas_ else None,
        "pandas_load": pandas_["cpu"]["load"] if pandas_ else None,
    }
    after, before = inc["report_after"]["period_actives"], inc["report_before"]["period_actives"]
    inc_ok = (
        after == inc["expected_actives"] and after > before and inc["refresh_mode"] == "incremental"
    )
    share = inc["refresh_seconds"] / inc["rebuild_seconds"]
    peak = max(
        peaks[s]["self"] + peaks[s]["children"]
        for s in ("rebuild", "keepwell", "report_all", "incremental")
    )
    speed_all = totals["sql"] / totals["keepwell_report_all"]
    speed_catalogue = totals["sql"] / totals["keepwell_catalogue"]
    speed_event = totals["sql"] / totals["keepwell_event_metrics"]
    cpu_all = totals_cpu["sql"] / totals_cpu["keepwell_report_all"]
    cpu_catalogue = totals_cpu["sql"] / totals_cpu["keepwell_catalogue"]
    cpu_event = totals_cpu["sql"] / totals_cpu["keepwell_event_metrics"]
    met = {True: "met", False: "NOT met"}
    lines = [
        f"report all (the command: open, 12 metrics, charts, HTML) vs raw SQL suite: "
        f"{speed_all:.2f}x wall, {cpu_all:.2f}x CPU "
        f"({met[min(speed_all, cpu_all) >= GOAL_SPEEDUP]}; goal >= {GOAL_SPEEDUP:g}x)",
        f"every catalogue metric (open + {len(kw['times'])} metrics, incl. features) vs raw SQL "
        f"suite: {speed_catalogue:.2f}x wall, {cpu_catalogue:.2f}x CPU "
        f"({met[min(speed_catalogue, cpu_catalogue) >= GOAL_SPEEDUP]})",
        f"the {len(EVENT_METRICS)} event metrics alone: {speed_event:.2f}x wall, "
        f"{cpu_event:.2f}x CPU",
        f"refresh / rebuild: {share:.1%} ({met[share < GOAL_REFRESH_SHARE]}; goal < 5%); "
        f"next report reflects the new day: {'yes' if inc_ok else 'NO'}",
        f"peak RSS of keepwell's steps (rebuild, report, incremental): {peak:,.0f} MiB "
        f"({met[peak < GOAL_RSS_MIB]}; goal < 4 GB)",
        "checks: "
        + ("all OK" if all(c.ok for c in checks) else f"{sum(not c.ok for c in checks)} MISMATCH"),
    ]
    goals = {
        "speedup_report_all": speed_all,
        "speedup_catalogue": speed_catalogue,
        "speedup_event_metrics": speed_event,
        "speedup_report_all_cpu": cpu_all,
        "speedup_catalogue_cpu": cpu_catalogue,
        "speedup_event_metrics_cpu": cpu_event,
        "refresh_share": share,
        "incremental_ok": inc_ok,
        "keepwell_peak_mib": peak,
        "checks_ok": all(c.ok for c in checks),
        "lines": lines,
    }
    return {
        "checks": [asdict(c) for c in checks],
        "totals": totals,
        "totals_cpu": totals_cpu,
        "goals": goals,
    }


def summarise(report: dict) -> None:
    """Print the checks, the incremental refresh, the summary table, goals and memory."""
    print("\nchecks (same customers, periods and time zone)")
    for c in report["checks"]:
        print(f"  {Check(**c).line()}")
    inc, first = report["incremental"], report["rebuild"]["seconds"]
    ok = "OK" if report["goals"]["incremental_ok"] else "MISMATCH"
    print(
        f"\nincremental: appended {inc['rows']:,} events for {inc['day']} in "
        f"{inc['append_seconds']:.2f} s; refresh ({inc['refresh_mode']}, "
        f"{inc['refresh_events_read']:,} events read) {inc['refresh_seconds']:.2f} s "
        f"(CPU {inc['refresh_cpu']:.2f} s) vs full rebuild {inc['rebuild_seconds']:.2f} s "
        f"(CPU {inc['rebuild_cpu']:.2f} s) = {report['goals']['refresh_share']:.1%} "
        f"(first rebuild {first:.1f} s)"
    )
    print(
        f"  next report (active_customers on {inc['day']}): before the append "
        f"{inc['report_before']['period_actives']:,} active customers, after "
        f"{inc['report_after']['period_actives']:,}, raw events say "
        f"{inc['expected_actives']:,} -> {ok} ({inc['report_seconds']:.2f} s incl. open_default)"
    )
    kw, sql, pd_ = report["keepwell"], report["sql"], report.get("pandas")
    print("\nper metric: wall seconds / CPU seconds; ratio = other / keepwell (wall, CPU)")
    print(
        f"{'metric':17s} {'keepwell':>13s} {'raw SQL':>13s} {'pandas':>13s} "
        f"{'SQL/kw':>11s} {'pandas/kw':>11s}  checks"
    )
    checks = {(c["metric"], c["against"]): c for c in report["checks"]}

    def pair(suite: dict | None, name: str) -> tuple[float | None, float | None]:
        if suite is None or name not in suite["times"]:
            return None, None
        return suite["times"][name], suite["cpu"][name]

    for name in kw["times"]:
        k, s, p = pair(kw, name), pair(sql, name), pair(pd_, name)
        marks = [
            f"{a}:{'OK' if checks[(name, a)]['ok'] else 'MISMATCH'}"
            for a in ("sql", "pandas")
            if (name, a) in checks
        ]
        print(
            f"{name:17s} {_fmt_pair(k)} {_fmt_pair(s)} {_fmt_pair(p)} "
            f"{_fmt_ratios(s, k)} {_fmt_ratios(p, k)}  {' '.join(marks)}"
        )
    for name, why in kw["skipped"].items():
        print(f"{name:17s} skipped: {why}")
    t, c = report["totals"], report["totals_cpu"]
    print("\ntotals (wall s / CPU s)")
    n = len(EVENT_METRICS)
    rows = [
        ("open_default (read the operational store, attach the rollup)", "open_default"),
        ("keepwell: all metrics of the catalogue", "keepwell_metrics"),
        ("keepwell: open_default + all metrics of the catalogue", "keepwell_catalogue"),
        ("keepwell report all (the command: 12 metrics, charts, HTML)", "keepwell_report_all"),
        (f"keepwell: the {n} event metrics", "keepwell_event_metrics"),
        (f"raw SQL suite ({n} event metrics)", "sql"),
    ]
    if t.get("pandas") is not None:
        rows.append((f"pandas suite (incl. {t['pandas_load']:.1f} s to read the events)", "pandas"))
    for label, key in rows:
        print(f"  {label:62s} {_fmt_pair((t[key], c[key]))}")
    print("\ngoals")
    for line in report["goals"]["lines"]:
        print(f"  {line}")
    print("\npeak RSS per step (MiB: the step's process + its largest child)")
    for name, peak in report["peak_mib"].items():
        print(f"  {name:12s} {peak['self']:8,.0f} + {peak['children']:8,.0f}")
    mine = _peak_mib()
    print(
        f"  this process: RUSAGE_SELF {mine['self']:,.0f} MiB, "
        f"RUSAGE_CHILDREN {mine['children']:,.0f} MiB (the largest step)"
    )
    start, end = report["load_average_start"][0], report["load_average_end"][0]
    print(
        f"load average {start:.1f} at the start, {end:.1f} at the end on {os.cpu_count()} CPUs "
        "(the machine is shared: wall times are pessimistic)"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="keepwell-metrics-bench-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": _machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "load_average_start": os.getloadavg(),
    }
    try:
        steps = Steps(work, reuse=args.reuse, max_rss_mib=args.max_rss_gb * 1000**3 / 2**20)
        results = run_steps(args, work, steps)
        report.update(evaluate(results, work, steps.peaks))
        report.update({k: v for k, v in results.items() if k != "plan"})
        report["plan"] = results["plan"].to_dict()
        report["peak_mib"] = steps.peaks
        report["load_average_end"] = os.getloadavg()
        summarise(report)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str))
            print(f"figures written to {args.json}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    goals = report.get("goals", {})
    return 0 if goals.get("checks_ok") and goals.get("incremental_ok") else 1


if __name__ == "__main__":
    sys.exit(main())
