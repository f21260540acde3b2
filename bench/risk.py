"""Benchmark churn-risk scoring and training at scale, against a plain pandas feature pipeline.

    python3 bench/risk.py                                   # 1M customers, ~100M events
    python3 bench/risk.py --customers 100000                # ~10M events
    python3 bench/risk.py --work /data/riskbench --keep --reuse   # keep and reuse the data

Steps, each in a fresh (spawned) process with its wall time, CPU time and peak RSS; a watchdog
stops a step whose memory (with its children) passes ``--max-rss-gib``:

1. ``generate``: the SaaS demo business (``keepwell.demo.generator.generate``), history ending
   at ``--end`` (a month start);
2. ``load``: a new keepwell home (SQLite + event store) filled through the import path, as
   ``load_demo`` does, and the daily rollup built (``--path store``, the default); or, with
   ``--path direct``, only the customers bulk-inserted (scores need their ids) while keepwell's
   engine reads the exported files directly (raw event Parquet, no rollup) -- importing 1M
   customers' records and 100M events takes most of an hour on a busy 2-core machine, and
   reading a 10M-row store back is ``open_default``'s cost, not the risk model's;
3. ``features``: keepwell's features of every active customer as of ``--end``
   (``open_default`` + ``risk.dataset.snapshot_features``);
4. ``train``: observations on the ``--train-dates`` monthly dates before the censored ones
   (``build_observations``, >= 1M at 1M customers), LightGBM fitted and saved;
5. ``score``: ``risk.service.score_customers`` end to end: features, probabilities, reasons,
   one ``RiskScore`` row per active customer written to the store;
6. ``pandas``: the same features written the way an analyst would in plain pandas, from the
   exported files (CSV + event Parquet), for the scoring date and for the training dates;
7. the check: keepwell's and pandas' scoring-date features compared column by column.

``--json FILE`` writes every figure. The work directory is deleted unless ``--keep``.
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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GRACE_DAYS = 7
WINDOW = 28
HORIZON = 30
OPERATIONAL = ("customers", "subscriptions", "invoices", "surveys", "tickets")


# -- running a step in a fresh process ---------------------------------------------------------


class Stopwatch:
    """Wall and CPU (user + system of this process) seconds of a block."""

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def _child(func: Callable[..., Any], args: tuple[Any, ...], conn: Any) -> None:
    try:
        result = func(*args)
        conn.send(("ok", result))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        conn.close()


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def run_step(name: str, func: Callable[..., Any], *args: Any, max_rss_mib: float) -> dict:
    """``func(*args)`` in a spawned process: its result plus wall seconds and peak RSS (MiB).

    A step whose memory passes ``max_rss_mib`` is killed and reported as such.
    """
    print(f"::: {name} ...", flush=True)
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(func, args, send))
    started = time.perf_counter()
    process.start()
    send.close()
    peak_seen, killed = 0.0, None
    while not receive.poll(0.5):
        if not process.is_alive():
            break
        pids = _tree(process.pid)
        rss = _rss_mib(pids)
        peak_seen = max(peak_seen, rss)
        if rss > max_rss_mib:
            killed = rss
            for p in reversed(pids):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            break
    wall = time.perf_counter() - started
    try:
        status, result = receive.recv()
        peak = receive.recv()
    except EOFError:
        process.join()
        reason = (
            f"stopped at {killed:,.0f} MiB (limit {max_rss_mib:,.0f} MiB)"
            if killed
            else f"died (exit code {process.exitcode})"
        )
        print(f"    {name}: {reason} after {wall:.0f} s", flush=True)
        return {"ok": False, "error": reason, "wall": wall, "peak_mib": peak_seen}
    process.join()
    if status == "error":
        print(result, file=sys.stderr)
        return {
            "ok": False,
            "error": result.strip().splitlines()[-1],
            "wall": wall,
            "peak_mib": max(peak, peak_seen),
        }
    print(f"    {name}: {wall:,.1f} s, peak {max(peak, peak_seen):,.0f} MiB", flush=True)
    return {"ok": True, **result, "wall": wall, "peak_mib": max(peak, peak_seen)}


def _settings(home: str) -> Any:
    from keepwell.config import Settings

    return Settings(home=Path(home), database_url=None, events_path=None, reporting_timezone="UTC")


def _month_starts(end: date, count: int) -> list[date]:
    out, day = [], end
    for _ in range(count):
        day = (day - timedelta(days=1)).replace(day=1)
        out.append(day)
    return sorted(out)


def training_dates(end: date, count: int) -> list[date]:
    """The ``count`` latest monthly dates whose label (horizon + grace) is known at ``end``."""
    candidates = _month_starts(end, count + 3)
    known = [d for d in candidates if d + timedelta(days=HORIZON + GRACE_DAYS) <= end]
    return known[-count:]


# -- the "direct" path: keepwell's engine on the exported files -----------------------------------


def direct_sources(files: dict[str, str]) -> Any:
    """keepwell ``Sources`` on DuckDB straight over the exported files: the operational CSVs
    shaped as the import shapes them (MRR from price, trials left out) and the raw event
    Parquet as a view. What ``open_default`` gives, without reading a 1M-customer store."""
    import ibis

    from keepwell.metrics.sources import Sources

    frames = _operational_frames(files)
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    src = Sources.from_frames(con, frames)
    pattern = str(Path(files["events"]) / "*.parquet")
    con.raw_sql(
        "CREATE OR REPLACE TEMP VIEW kw_events_direct AS SELECT customer_id, event, "
        "CAST(occurred_at AT TIME ZONE 'UTC' AS TIMESTAMP) AS occurred_at, user_id, value "
        f"FROM read_parquet('{pattern}')"
    )
    src.tables["events"] = con.table("kw_events_direct")
    return src


def _mrr(price: pd.Series, period: pd.Series) -> np.ndarray:
    """price_minor / months of the billing period, rounded half to even (as the import)."""
    months = period.map({"month": 1, "quarter": 3, "year": 12}).astype("int64").to_numpy()
    q, r = np.divmod(price.to_numpy(), months)
    return q + ((2 * r > months) | ((2 * r == months) & (q % 2 == 1)))


def _operational_frames(files: dict[str, str]) -> dict[str, pd.DataFrame]:
    customers = pd.read_csv(
        files["customers"],
        usecols=["external_id", "signup_at", "industry", "country", "status", "owner_email"],
    )
    customers = customers.rename(columns={"external_id": "customer_id", "owner_email": "owner"})
    subs = pd.read_csv(files["subscriptions"], low_memory=False)
    subs = subs[subs["status"] != "trialing"]
    subs = subs.assign(mrr_minor=_mrr(subs["price_minor"], subs["billing_period"]))
    return {
        "customers": customers,
        "subscriptions": subs[
            ["customer_id", "plan", "mrr_minor", "currency", "started_at", "ended_at"]
        ],
        "invoices": pd.read_csv(
            files["invoices"],
            usecols=[
                "customer_id",
                "amount_minor",
                "currency",
                "issued_at",
                "due_at",
                "paid_at",
                "status",
            ],
        ),
        "surveys": pd.read_csv(
            files["surveys"], usecols=["customer_id", "kind", "score", "responded_at"]
        ),
        "tickets": pd.read_csv(
            files["tickets"], usecols=["customer_id", "priority", "opened_at", "closed_at"]
        ),
    }


def step_load_customers(home: str, files: dict[str, str], rollup: bool = False) -> dict:
    """A migrated store holding only the customers (scores need their ids), bulk-inserted;
    with ``rollup``, the events also appended to an event store and the daily rollup built
    (what a running keepwell keeps up to date incrementally)."""
    from sqlalchemy import insert

    from keepwell import migrate
    from keepwell.customers.models import Customer
    from keepwell.db import engine_from_settings, session_scope

    settings = _settings(home)
    engine = engine_from_settings(settings)
    try:
        migrate.upgrade(engine)
        customers = pd.read_csv(files["customers"], usecols=["external_id", "name", "signup_at"])
        customers["signup_at"] = pd.to_datetime(customers["signup_at"], utc=True)
        with Stopwatch() as watch, session_scope(engine) as db_session:
            rows = customers.to_dict("records")
            for start in range(0, len(rows), 50_000):
                db_session.execute(insert(Customer), rows[start : start + 50_000])
    finally:
        engine.dispose()
    out = {"customers_s": watch.wall, "customers": len(customers)}
    if rollup:
        import pyarrow.dataset as ds

        from keepwell.events.store import EventStore
        from keepwell.metrics.rollup import Rollup

        store = EventStore.from_settings(settings)
        reader = (
            ds.dataset(files["events"], format="parquet")
            .scanner(columns=["customer_id", "event", "occurred_at", "user_id", "value"])
            .to_reader()
        )
        with Stopwatch() as watch:
            out["events"] = store.append(reader).rows
        out["events_s"] = watch.wall
        with Stopwatch() as watch:
            Rollup.from_settings(settings).rebuild(store)
        out["rollup_s"] = watch.wall
    return out


# -- keepwell steps ------------------------------------------------------------------------------


def step_generate(out: str, customers: int, months: int, epcd: float, end: str) -> dict:
    from keepwell.demo.generator import generate

    with Stopwatch() as watch:
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
        "seconds": watch.wall,
        "rows": manifest.rows,
        "files": {k: str(v) for k, v in manifest.files.items()},
    }


def step_load(home: str, files: dict[str, str]) -> dict:
    """Migrate a new SQLite store, import every file as ``load_demo`` does, build the rollup."""
    from keepwell import migrate
    from keepwell.db import engine_from_settings, session_scope
    from keepwell.events.importer import import_events
    from keepwell.events.store import EventStore
    from keepwell.imports import service as import_service
    from keepwell.metrics.rollup import Rollup

    settings = _settings(home)
    engine = engine_from_settings(settings)
    out: dict[str, float] = {}
    try:
        migrate.upgrade(engine)
        with Stopwatch() as watch:
            for kind in OPERATIONAL:
                with session_scope(engine) as db_session:
                    summary = import_service.import_file(
                        db_session=db_session,
                        kind=kind,
                        path=Path(files[kind]),
                        rejects_dir=settings.rejects_dir,
                        default_currency="USD",
                    )
                if summary.rejected:
                    raise RuntimeError(f"{kind}: {summary.rejected} rows rejected")
        out["operational_s"] = watch.wall
        with Stopwatch() as watch:
            with session_scope(engine) as db_session:
                known = import_service.known_customer_ids(db_session=db_session)
            store = EventStore.from_settings(settings)
            summary = import_events(
                Path(files["events"]),
                store=store,
                known_customer_ids=known,
                rejects_dir=settings.rejects_dir,
            )
        out["events_s"], out["events"] = watch.wall, summary.inserted
        with Stopwatch() as watch:
            Rollup.from_settings(settings).refresh(store)
        out["rollup_s"] = watch.wall
    finally:
        engine.dispose()
    return out


def _open(home: str, files: dict[str, str] | None) -> Any:
    from keepwell.metrics.rollup import Rollup
    from keepwell.metrics.sources import open_default

    if not files:
        return open_default(_settings(home))
    src = direct_sources(files)
    rollup = Rollup.from_settings(_settings(home))
    if rollup.files():  # built by the load step (--rollup)
        rollup.attach(src)
    return src


def step_features(home: str, as_of: str, out_file: str, files: dict | None) -> dict:
    from keepwell.risk.dataset import snapshot_features

    with Stopwatch() as opened:
        src = _open(home, files)
    with Stopwatch() as watch:
        frame = snapshot_features(src, as_of=date.fromisoformat(as_of))
    frame.to_parquet(out_file, index=False)
    return {
        "open_s": opened.wall,
        "features_s": watch.wall,
        "features_cpu": watch.cpu,
        "rows": len(frame),
        "columns": frame.shape[1],
    }


def step_train(home: str, dates: list[str], end: str, files: dict | None) -> dict:
    from keepwell.risk.artifacts import save_model
    from keepwell.risk.dataset import build_observations
    from keepwell.risk.model import GradientBoostingRiskModel

    settings = _settings(home)
    with Stopwatch() as opened:
        src = _open(home, files)
    with Stopwatch() as feats:
        obs = build_observations(
            src,
            as_of=[date.fromisoformat(d) for d in dates],
            known_until=pd.Timestamp(end).to_pydatetime(),
            dates_per_query=len(dates),
        )
    labelled = obs.labelled
    with Stopwatch() as fit:
        model = GradientBoostingRiskModel(gap_days=obs.gap_days).fit(labelled.X, labelled.y)
    save_model(
        model,
        settings=settings,
        metadata={
            "features": model.features_,
            "categorical": obs.categorical,
            "event_types": obs.event_types,
            "window_days": WINDOW,
            "grace_days": GRACE_DAYS,
            "horizon_days": HORIZON,
        },
    )
    return {
        "open_s": opened.wall,
        "observations_s": feats.wall,
        "fit_s": fit.wall,
        "fit_cpu": fit.cpu,
        "observations": len(labelled.frame),
        "fit_rows": model.n_train_,
        "calibration_rows": model.n_calibration_,
        "base_rate": float(labelled.y.mean()),
    }


def step_score(home: str, as_of: str, files: dict | None) -> dict:
    from keepwell.db import engine_from_settings, session_scope
    from keepwell.risk.service import score_customers

    settings = _settings(home)
    with Stopwatch() as opened:
        src = _open(home, files)
    marks: dict[str, float] = {}
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if done == total:
            marks[stage] = time.perf_counter() - started

    engine = engine_from_settings(settings)
    try:
        with Stopwatch() as watch, session_scope(engine) as db_session:
            run = score_customers(
                db_session=db_session,
                settings=settings,
                src=src,
                as_of=date.fromisoformat(as_of),
                progress=progress,
            )
    finally:
        engine.dispose()
    return {
        "open_s": opened.wall,
        "score_s": watch.wall,
        "score_cpu": watch.cpu,
        "features_s": marks.get("features", float("nan")),
        "scored": run.scored,
        "bands": run.bands,
    }


# -- the plain pandas pipeline (what an analyst writes) -----------------------------------------


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).dt.tz_localize(None)


def pandas_features(files: dict[str, str], days: list[date]) -> pd.DataFrame:
    """keepwell's feature definitions (docs/metrics/features.md) in plain pandas, UTC days."""
    subs = pd.read_csv(
        files["subscriptions"],
        usecols=[
            "customer_id",
            "price_minor",
            "billing_period",
            "started_at",
            "ended_at",
            "status",
        ],
    )
    subs = subs[subs["status"] != "trialing"].copy()
    subs["started_at"], subs["ended_at"] = _utc(subs["started_at"]), _utc(subs["ended_at"])
    months = subs["billing_period"].map({"month": 1, "quarter": 3, "year": 12}).astype("int64")
    q, r = np.divmod(subs["price_minor"].to_numpy(), months.to_numpy())
    subs["mrr"] = q + ((2 * r > months) | ((2 * r == months) & (q % 2 == 1)))
    subs["end"] = subs["ended_at"].fillna(pd.Timestamp("2262-01-01"))  # open: far ahead
    subs = subs.sort_values(["customer_id", "started_at", "end"])
    prev_end = subs.groupby("customer_id")["end"].cummax().groupby(subs["customer_id"]).shift()
    new = prev_end.isna() | (subs["started_at"] > prev_end + pd.Timedelta(days=GRACE_DAYS))
    subs["spell"] = new.astype(int).groupby(subs["customer_id"]).cumsum()
    spells = (
        subs.groupby(["customer_id", "spell"])
        .agg(start=("started_at", "min"), end=("end", "max"))
        .reset_index()
    )
    first = subs.groupby("customer_id")["started_at"].min().rename("first_start")

    events = pd.read_parquet(files["events"], columns=["customer_id", "event", "occurred_at"])
    events["occurred_at"] = events["occurred_at"].dt.tz_localize(None)
    events["day"] = events["occurred_at"].dt.floor("D")
    types = sorted(events["event"].str.lower().str.replace(r"[^a-z0-9]", "_", regex=True).unique())
    events["type"] = events["event"].str.lower().str.replace(r"[^a-z0-9]", "_", regex=True)
    invoices = pd.read_csv(files["invoices"], usecols=["customer_id", "issued_at", "status"])
    invoices = invoices[invoices["status"] == "failed"].copy()
    invoices["issued_at"] = _utc(invoices["issued_at"])
    surveys = pd.read_csv(
        files["surveys"], usecols=["customer_id", "kind", "score", "responded_at"]
    )
    surveys = surveys[(surveys["kind"] == "nps") & surveys["score"].notna()].copy()
    surveys["responded_at"] = _utc(surveys["responded_at"])
    tickets = pd.read_csv(files["tickets"], usecols=["customer_id", "opened_at"])
    tickets["opened_at"] = _utc(tickets["opened_at"])
    industry = (
        pd.read_csv(files["customers"], usecols=["external_id", "industry"])
        .rename(columns={"external_id": "customer_id"})
        .set_index("customer_id")["industry"]
    )

    out = []
    for day in days:
        at = pd.Timestamp(day)
        act = spells[(spells["start"] <= at) & (at < spells["end"])].set_index("customer_id")
        f = pd.DataFrame(index=act.index)
        f["as_of"] = day
        f["tenure_days"] = (at - act["start"].dt.floor("D")).dt.days
        f["customer_age_days"] = (at - first.reindex(f.index).dt.floor("D")).dt.days
        in_force = subs[(subs["started_at"] <= at) & (at < subs["end"])]
        mrr = in_force.groupby("customer_id")["mrr"].sum()
        ended = subs[subs["end"] <= at]
        gap_start = ended.groupby("customer_id")["end"].transform("max")
        carried = ended[ended["end"] == gap_start].groupby("customer_id")["mrr"].sum()
        f["mrr_minor"] = mrr.reindex(f.index).fillna(carried.reindex(f.index)).fillna(0)
        w = events[(events["day"] >= at - pd.Timedelta(days=2 * WINDOW)) & (events["day"] < at)]
        cur = w["day"] >= at - pd.Timedelta(days=WINDOW)
        g_cur, g_prev = w[cur].groupby("customer_id"), w[~cur].groupby("customer_id")
        ev_c = g_cur.size().reindex(f.index, fill_value=0)
        ev_p = g_prev.size().reindex(f.index, fill_value=0)
        dy_c = g_cur["day"].nunique().reindex(f.index, fill_value=0)
        dy_p = g_prev["day"].nunique().reindex(f.index, fill_value=0)
        for name, c, p in (("events", ev_c, ev_p), ("active_days", dy_c, dy_p)):
            f[f"{name}_{WINDOW}"], f[f"{name}_prev_{WINDOW}"] = c, p
            f[f"{name}_ratio"] = (c / p).where(p > 0)
            f[f"{name}_pct_change"] = ((c - p) * 100.0 / p).where(
                p > 0, np.where(c == 0, 0.0, np.nan)
            )
        last = events[events["occurred_at"] < at].groupby("customer_id")["day"].max()
        f["days_since_last_event"] = (at - last.reindex(f.index)).dt.days
        counts = pd.crosstab(w.loc[cur, "customer_id"], w.loc[cur, "type"])
        for t in types:
            col = counts[t] if t in counts else pd.Series(dtype="int64")
            f[f"n{WINDOW}_{t}"] = col.reindex(f.index, fill_value=0)
        inv = invoices[
            (invoices["issued_at"] >= at - pd.Timedelta(days=90)) & (invoices["issued_at"] < at)
        ]
        f["failed_invoices_90"] = inv.groupby("customer_id").size().reindex(f.index, fill_value=0)
        sv = surveys[surveys["responded_at"] < at].sort_values(["responded_at", "score"])
        lastnps = sv.groupby("customer_id").tail(1).set_index("customer_id")
        f["last_nps_score"] = lastnps["score"].reindex(f.index)
        f["days_since_last_nps"] = (at - lastnps["responded_at"].dt.floor("D")).dt.days.reindex(
            f.index
        )
        tk = tickets[
            (tickets["opened_at"] >= at - pd.Timedelta(days=WINDOW)) & (tickets["opened_at"] < at)
        ]
        f[f"tickets_{WINDOW}"] = tk.groupby("customer_id").size().reindex(f.index, fill_value=0)
        f[f"features_used_{WINDOW}"] = (f[[f"n{WINDOW}_{t}" for t in types]] > 0).sum(axis=1)
        f["industry"] = industry.reindex(f.index).fillna("(none)")
        out.append(f.reset_index())
    return pd.concat(out, ignore_index=True)


def step_pandas(files: dict[str, str], days: list[str], out_file: str | None) -> dict:
    with Stopwatch() as watch:
        frame = pandas_features(files, [date.fromisoformat(d) for d in days])
    if out_file:
        frame.to_parquet(out_file, index=False)
    return {"features_s": watch.wall, "features_cpu": watch.cpu, "rows": len(frame)}


def compare(keepwell_file: str, pandas_file: str) -> dict:
    """Column-by-column comparison of the scoring-date features: mismatching cells per column."""
    k = pd.read_parquet(keepwell_file).set_index("customer_id").sort_index()
    p = pd.read_parquet(pandas_file).set_index("customer_id").sort_index()
    out: dict[str, Any] = {
        "rows_keepwell": len(k),
        "rows_pandas": len(p),
        "same_customers": bool(k.index.equals(p.index)),
        "mismatches": {},
    }
    common = k.index.intersection(p.index)
    for col in k.columns:
        if col in ("as_of",):
            continue
        if col not in p.columns:
            out["mismatches"][col] = "missing in pandas"
            continue
        a, b = k.loc[common, col], p.loc[common, col]
        if a.dtype == object or b.dtype == object:
            bad = (a.astype(str) != b.astype(str)).sum()
        else:
            a, b = a.astype("float64").to_numpy(), b.astype("float64").to_numpy()
            both_nan = np.isnan(a) & np.isnan(b)
            bad = (~both_nan & ~np.isclose(a, b, rtol=1e-9, atol=1e-9)).sum()
        if bad:
            out["mismatches"][col] = int(bad)
    return out


# -- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--events-per-customer-day", type=float, default=0.45)
    parser.add_argument("--end", default="2026-11-01", help="history end (a month start)")
    parser.add_argument("--train-dates", type=int, default=4)
    parser.add_argument("--work", default=None, help="work directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--reuse", action="store_true", help="reuse generated data and home")
    parser.add_argument(
        "--path",
        choices=("store", "direct"),
        default="store",
        help="store: import everything and read it with open_default (as `keepwell risk` "
        "does); direct: keepwell's engine on the exported files, only customers imported",
    )
    parser.add_argument(
        "--rollup",
        action="store_true",
        help="with --path direct: also build the daily rollup (features read it)",
    )
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--max-rss-gib", type=float, default=14.0)
    parser.add_argument("--json", default=None, help="write all figures to this file")
    args = parser.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="keepwell-riskbench-"))
    work.mkdir(parents=True, exist_ok=True)
    data, home = work / "data", work / "home"
    limit = args.max_rss_gib * 1024
    end = date.fromisoformat(args.end)
    dates = [d.isoformat() for d in training_dates(end, args.train_dates)]
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_start": os.getloadavg(),
        },
        "args": vars(args),
        "scoring_date": args.end,
        "training_dates": dates,
    }
    try:
        manifest_file = work / "manifest.json"
        if args.reuse and manifest_file.exists():
            gen = json.loads(manifest_file.read_text())
        else:
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)
            gen = run_step(
                "generate",
                step_generate,
                str(data),
                args.customers,
                args.months,
                args.events_per_customer_day,
                args.end,
                max_rss_mib=limit,
            )
            if not gen["ok"]:
                raise SystemExit(f"generation failed: {gen['error']}")
            manifest_file.write_text(json.dumps(gen))
        report["generate"] = gen
        files = gen["files"]
        loaded = work / f"loaded-{args.path}{'-rollup' if args.rollup else ''}.json"
        if args.reuse and loaded.exists():
            report["load"] = json.loads(loaded.read_text())
        else:
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            if args.path == "store":
                report["load"] = run_step("load", step_load, str(home), files, max_rss_mib=limit)
            else:
                report["load"] = run_step(
                    "load", step_load_customers, str(home), files, args.rollup, max_rss_mib=limit
                )
            if not report["load"]["ok"]:
                raise SystemExit(f"load failed: {report['load']['error']}")
            loaded.write_text(json.dumps(report["load"]))
        direct = files if args.path == "direct" else None
        kw_file = str(work / "features_keepwell.parquet")
        pd_file = str(work / "features_pandas.parquet")
        report["features"] = run_step(
            "keepwell features",
            step_features,
            str(home),
            args.end,
            kw_file,
            direct,
            max_rss_mib=limit,
        )
        report["train"] = run_step(
            "keepwell train", step_train, str(home), dates, args.end, direct, max_rss_mib=limit
        )
        report["score"] = run_step(
            "keepwell score", step_score, str(home), args.end, direct, max_rss_mib=limit
        )
        if not args.skip_pandas:
            report["pandas_features"] = run_step(
                "pandas features", step_pandas, files, [args.end], pd_file, max_rss_mib=limit
            )
            if report["pandas_features"]["ok"]:
                report["check"] = compare(kw_file, pd_file)
                report["pandas_train"] = run_step(
                    "pandas training features", step_pandas, files, dates, None, max_rss_mib=limit
                )
        report["machine"]["load_avg_end"] = os.getloadavg()
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in report.items() if k != "generate"}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
