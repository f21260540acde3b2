"""Benchmark keepwell's web app and REST API against a live ``keepwell serve``.

Usage::

    python bench/web.py --home /path/to/home            # an existing keepwell home
    python bench/web.py --customers 2000                # builds a demo home first
        [--concurrency 8] [--requests 200] [--batches 10] [--batch-size 10000] [--json FILE]

What it does:

1. Home: ``--home`` is used as is, except the event store, which is copied to the work
   directory (the ingestion benchmark appends there, so the home stays reusable). With
   ``--customers N`` a demo business is loaded into a new home (``keepwell.demo.loader``).
2. An admin user and an API token are created for the run (disabled/revoked at the end).
3. ``keepwell serve`` runs as a subprocess on a free port (automation off; the dashboard
   warmer on, as by default: it computes the dashboard at start-up).
4. Pages: ``concurrency`` httpx async clients each log in through the form with the CSRF token,
   like a browser. The first dashboard visit after start-up is reported apart (its latency and
   what it showed: fresh figures, or a "computing" notice after ``KEEPWELL_DASHBOARD_WAIT_SECONDS``)
   with the time until the figures were fresh; then ``requests`` requests per page: the
   dashboard ``/``, the customers list ``/customers`` (filter and sort variants, round robin)
   and customer 360 ``/customers/{id}`` (random customers).
   p50/p95 latency and requests/s.
5. Ingestion: ``batches`` JSON batches of ``batch-size`` events ``POST /v1/events``, one after
   the other, each with its own ``Idempotency-Key`` (a retry of the first must be skipped),
   each paired with the same rows, already as Arrow tables, through ``EventStore.append`` in
   this process (same store, a batch key too), the two back to back, which one first
   alternating. Events/s of both, their ratio (goal >= 0.5) and the median per-pair ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pyarrow as pa
import pyarrow.compute as pc

PASSWORD = "bench-password-" + uuid.uuid4().hex[:8]
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
GOAL_RATIO = 0.5
EVENT_NAMES = ("login", "report_view", "export", "dashboard_view", "invite_sent")
LIST_VARIANTS = (
    "/customers",
    "/customers?sort=signup_at&order=desc",
    "/customers?risk=high",
    "/customers?health=red&sort=industry",
    "/customers?q=a&sort=external_id",
    "/customers?page=20",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def _settings(home: Path, events: Path, secret: str) -> Any:
    from keepwell.config import Settings

    return Settings(
        home=home,
        database_url=None,
        events_path=events,
        secret_key=secret,
        automation_interval_seconds=0,
    )


# -- setup ----------------------------------------------------------------------------------------


def build_demo_home(home: Path, customers: int) -> dict[str, Any]:
    from keepwell.config import Settings
    from keepwell.demo.loader import load_demo

    started = time.perf_counter()
    load_demo(
        Settings(home=home, database_url=None, events_path=None, automation_interval_seconds=0),
        customers=customers,
    )
    return {"customers": customers, "seconds": round(time.perf_counter() - started, 1)}


def make_staff(settings: Any) -> tuple[str, str, int]:
    """An admin user and a write token for this run: (email, token secret, token id)."""
    from keepwell import migrate
    from keepwell.db import make_engine, session_scope
    from keepwell.users import service as users_service

    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine)
        with session_scope(engine) as db_session:
            users_service.create(
                db_session=db_session, email=email, name="Bench", role="admin", password=PASSWORD
            )
            token, secret = users_service.create_token(
                db_session=db_session, email=email, name="bench", scopes=["read", "write"]
            )
            token_id = token.id
    finally:
        engine.dispose()
    return email, secret, token_id


def retire_staff(settings: Any, email: str, token_id: int) -> None:
    from keepwell.db import make_engine, session_scope
    from keepwell.users import service as users_service

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as db_session:
            users_service.revoke_token(db_session=db_session, token_id=token_id)
            users_service.disable(db_session=db_session, email=email)
    finally:
        engine.dispose()


def customer_ids(settings: Any, count: int, seed: int) -> list[str]:
    """``count`` random customers' external ids (with repeats if there are fewer)."""
    from sqlalchemy import select

    from keepwell.customers.models import Customer
    from keepwell.db import make_engine, session_scope

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as db_session:
            ids = list(db_session.scalars(select(Customer.external_id)))
    finally:
        engine.dispose()
    if not ids:
        raise SystemExit("the home has no customers")
    rng = random.Random(seed)
    return [rng.choice(ids) for _ in range(count)]


class Server:
    """``keepwell serve`` in a subprocess on a free port (output in ``log``)."""

    def __init__(self, settings: Any, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            KEEPWELL_HOME=str(settings.home),
            KEEPWELL_EVENTS_PATH=str(settings.events_path),
            KEEPWELL_SECRET_KEY=settings.secret_key,
            KEEPWELL_AUTOMATION_INTERVAL_SECONDS="0",
        )
        env.pop("KEEPWELL_DATABASE_URL", None)
        keepwell = shutil.which("keepwell") or "keepwell"
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [keepwell, "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.started = self._wait()

    def _wait(self) -> float:
        began = time.perf_counter()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"keepwell serve exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return time.perf_counter() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("keepwell serve did not answer within 300 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


# -- pages ----------------------------------------------------------------------------------------


async def browser_login(client: httpx.AsyncClient, email: str) -> None:
    """Log in through the form, as a browser does (GET the form, POST it with its CSRF token)."""
    form = await client.get("/login")
    form.raise_for_status()
    match = CSRF_RE.search(form.text)
    if not match:
        raise RuntimeError("no csrf_token in the login form")
    done = await client.post(
        "/login",
        data={"csrf_token": match.group(1), "email": email, "password": PASSWORD, "next": "/"},
    )
    if done.status_code != 303:
        raise RuntimeError(f"login failed: {done.status_code} {done.text[:300]}")


async def timed_get(client: httpx.AsyncClient, path: str) -> float:
    started = time.perf_counter()
    answer = await client.get(path)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
    return elapsed


async def load(clients: list[httpx.AsyncClient], paths: list[str]) -> dict[str, Any]:
    """GET every path, ``len(clients)`` at a time; latencies in ms per path group."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    times: dict[str, list[float]] = {}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            path = queue.get_nowait()
            elapsed = await timed_get(client, path)
            times.setdefault(path, []).append(elapsed * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    wall = time.perf_counter() - started
    every = [t for ts in times.values() for t in ts]
    return {
        "requests": len(every),
        "p50_ms": round(percentile(every, 50), 1),
        "p95_ms": round(percentile(every, 95), 1),
        "max_ms": round(max(every), 1),
        "requests_per_s": round(len(every) / wall, 1),
        "by_path": times,
    }


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "requests": len(times),
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
    }


STATE_RE = re.compile(r'data-state="(\w+)"')


async def dashboard_state(client: httpx.AsyncClient) -> tuple[float, str]:
    """(seconds, state) of one dashboard visit: fresh, stale, computing or failed."""
    started = time.perf_counter()
    answer = await client.get("/")
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"GET /: {answer.status_code} {answer.text[:300]}")
    match = STATE_RE.search(answer.text)
    return elapsed, match.group(1) if match else "fresh"


async def dashboard_first_visits(client: httpx.AsyncClient, *, limit: float = 3600) -> dict:
    """The first dashboard visit after start-up (its latency and what it showed), then visits
    every 5 s until the figures are fresh (the server's warmer computes them at start-up)."""
    began = time.perf_counter()
    first, state = await dashboard_state(client)
    first_state = state
    while state != "fresh":
        if state == "failed":
            raise RuntimeError("the dashboard figures could not be computed")
        if time.perf_counter() - began > limit:
            raise RuntimeError(f"no fresh dashboard figures after {limit:.0f} s")
        await asyncio.sleep(5)
        _, state = await dashboard_state(client)
    return {
        "dashboard_first_ms": round(first * 1000, 1),
        "dashboard_first_state": first_state,
        "dashboard_fresh_after_s": round(time.perf_counter() - began, 1),
    }


async def bench_pages(
    url: str, email: str, ids: list[str], *, concurrency: int, requests: int
) -> dict[str, Any]:
    clients = [
        httpx.AsyncClient(base_url=url, timeout=300, follow_redirects=False)
        for _ in range(concurrency)
    ]
    try:
        for client in clients:  # one after the other: logins are rate limited per address
            await browser_login(client, email)
        out: dict[str, Any] = await dashboard_first_visits(clients[0])
        out["dashboard"] = await load(clients, ["/"] * requests)
        lists = [LIST_VARIANTS[i % len(LIST_VARIANTS)] for i in range(requests)]
        out["customers_list"] = await load(clients, lists)
        out["customers_list"]["variants"] = {
            p: _summary(t) for p, t in out["customers_list"].pop("by_path").items()
        }
        out["customer_360"] = await load(clients, [f"/customers/{i}" for i in ids[:requests]])
        for name in ("dashboard", "customer_360"):
            out[name].pop("by_path")
    finally:
        for client in clients:
            await client.aclose()
    return out


# -- ingestion ------------------------------------------------------------------------------------


def make_batches(ids: list[str], *, batches: int, size: int, seed: int) -> list[list[dict]]:
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0)
    out = []
    for b in range(batches):
        rows = []
        for i in range(size):
            at = end - timedelta(seconds=rng.randrange(30 * 86400))
            row: dict[str, Any] = {
                "customer_id": rng.choice(ids),
                "event": rng.choice(EVENT_NAMES),
                "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "user_id": f"u_{rng.randrange(20)}",
                "value": round(rng.random() * 10, 2),
            }
            if i % 3 == 0:
                row["properties"] = {"plan": rng.choice(("pro", "team")), "batch": b}
            rows.append(row)
        out.append(rows)
    return out


def as_arrow(rows: list[dict]) -> pa.Table:
    from keepwell.events.schema import SCHEMA

    props = [r.get("properties") for r in rows]
    return pa.table(
        {
            "customer_id": pa.array([r["customer_id"] for r in rows], pa.string()),
            "event": pa.array([r["event"] for r in rows], pa.string()),
            "occurred_at": pc.cast(
                pa.array([r["occurred_at"] for r in rows], pa.string()),
                SCHEMA.field("occurred_at").type,
            ),
            "user_id": pa.array([r["user_id"] for r in rows], pa.string()),
            "value": pa.array([r["value"] for r in rows], pa.float64()),
            "properties": pa.array(
                [None if p is None else msgspec.json.encode(p).decode() for p in props],
                pa.string(),
            ),
        },
        schema=SCHEMA,
    )


def bench_ingestion(url: str, token: str, settings: Any, batches: list[list[dict]]) -> dict:
    """Each batch goes once over HTTP and once through ``EventStore.append`` (its Arrow table,
    built beforehand), the two back to back into the same store, so both sides meet the same
    store state (log length, checkpoints, files) and the same machine load. Which side goes
    first alternates from batch to batch (the side that commits right after the other reads
    one more commit, and checkpoints fall on versions of one parity). Both sides use a batch
    key, as a client that retries would."""
    from keepwell.events.store import EventStore

    bodies = [msgspec.json.encode(rows) for rows in batches]
    tables = [as_arrow(b) for b in batches]
    keys = [f"bench-{uuid.uuid4().hex}" for _ in bodies]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rows = sum(len(b) for b in batches)
    store = EventStore(settings.events_path)
    version_before = store.version()
    per_batch: list[float] = []
    direct: list[float] = []
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:

        def over_http(body: bytes, key: str, expected: int) -> None:
            t = time.perf_counter()
            answer = client.post("/v1/events", content=body, headers={"Idempotency-Key": key})
            per_batch.append(time.perf_counter() - t)
            if answer.status_code != 200 or answer.json()["rows"] != expected:
                raise RuntimeError(f"POST /v1/events: {answer.status_code} {answer.text[:300]}")

        def in_process(table: pa.Table) -> None:
            t = time.perf_counter()
            result = store.append(table, batch_key=f"bench-direct-{uuid.uuid4().hex}")
            direct.append(time.perf_counter() - t)
            if result.rows != table.num_rows:
                raise RuntimeError(f"EventStore.append wrote {result.rows} rows")

        # warm-up, not timed: the route's imports and the server's snapshot; this process's too
        over_http(msgspec.json.encode(batches[0][:100]), f"bench-warm-{uuid.uuid4().hex}", 100)
        in_process(tables[0].slice(0, 100))
        per_batch.clear()
        direct.clear()
        for i, (body, table, key) in enumerate(zip(bodies, tables, keys, strict=True)):
            if i % 2 == 0:
                over_http(body, key, table.num_rows)
                in_process(table)
            else:
                in_process(table)
                over_http(body, key, table.num_rows)
        retry = client.post("/v1/events", content=bodies[0], headers={"Idempotency-Key": keys[0]})
        retry.raise_for_status()
        if not retry.json()["skipped"]:
            raise RuntimeError("a retried Idempotency-Key was written twice")
    http_seconds = sum(per_batch)
    direct_seconds = sum(direct)
    http_rate = rows / http_seconds
    direct_rate = rows / direct_seconds
    pair_ratios = [d / h for h, d in zip(per_batch, direct, strict=True)]
    return {
        "batches": len(batches),
        "batch_size": len(batches[0]),
        "rows": rows,
        "store_versions": [version_before, store.version()],
        "body_mib_per_batch": round(statistics.mean(len(b) for b in bodies) / 2**20, 2),
        "http_seconds": round(http_seconds, 2),
        "http_batch_p50_ms": round(percentile(per_batch, 50) * 1000, 1),
        "http_batch_p95_ms": round(percentile(per_batch, 95) * 1000, 1),
        "http_events_per_s": round(http_rate),
        "direct_seconds": round(direct_seconds, 2),
        "direct_batch_p50_ms": round(percentile(direct, 50) * 1000, 1),
        "direct_batch_p95_ms": round(percentile(direct, 95) * 1000, 1),
        "direct_events_per_s": round(direct_rate),
        "ratio": round(http_rate / direct_rate, 2),
        "pair_ratio_p50": round(statistics.median(pair_ratios), 2),
        "pair_ratio_min_max": [round(min(pair_ratios), 2), round(max(pair_ratios), 2)],
        "goal_ratio": GOAL_RATIO,
        "goal_ok": http_rate / direct_rate >= GOAL_RATIO,
        "retry_skipped": True,
    }


# -- report ---------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    pages = report["pages"]
    lines = [
        f"{'page':46s} {'requests':>8s} {'p50 ms':>9s} {'p95 ms':>9s} {'req/s':>7s}",
        f"{'/ (first visit after start-up)':46s} {1:8d} {pages['dashboard_first_ms']:9.1f} "
        f"{'':>9s} showed: {pages['dashboard_first_state']}, fresh figures after "
        f"{pages['dashboard_fresh_after_s']} s",
    ]
    for label, key in (
        ("/ (dashboard, warm)", "dashboard"),
        ("/customers (all variants)", "customers_list"),
        ("/customers/{id} (customer 360)", "customer_360"),
    ):
        p = pages[key]
        lines.append(
            f"{label:46s} {p['requests']:8d} {p['p50_ms']:9.1f} {p['p95_ms']:9.1f} "
            f"{p['requests_per_s']:7.1f}"
        )
        if key == "customers_list":
            for path, v in p["variants"].items():
                lines.append(
                    f"  {path:44s} {v['requests']:8d} {v['p50_ms']:9.1f} {v['p95_ms']:9.1f}"
                )
    ing = report["ingestion"]
    lines += [
        "",
        f"ingestion: {ing['batches']} batches x {ing['batch_size']:,} events "
        f"({ing['body_mib_per_batch']} MiB JSON each)",
        f"  POST /v1/events   {ing['http_events_per_s']:>12,} events/s "
        f"(batch p50 {ing['http_batch_p50_ms']} ms)",
        f"  EventStore.append {ing['direct_events_per_s']:>12,} events/s "
        f"(batch p50 {ing['direct_batch_p50_ms']} ms)",
        f"  ratio {ing['ratio']} (goal >= {GOAL_RATIO}: {'met' if ing['goal_ok'] else 'NOT met'}); "
        f"per batch pair: median {ing['pair_ratio_p50']}, "
        f"range {ing['pair_ratio_min_max'][0]}-{ing['pair_ratio_min_max'][1]}",
        f"  store versions {ing['store_versions'][0]} -> {ing['store_versions'][1]}",
        f"load average {report['machine']['loadavg_before']} -> "
        f"{report['machine']['loadavg_after']} on {report['machine']['cpus']} CPUs",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--home", type=Path, help="an existing keepwell home")
    source.add_argument("--customers", type=int, help="build a demo home of N customers")
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="requests per page")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="keepwell-web-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {
            "concurrency": args.concurrency,
            "requests": args.requests,
            "batches": args.batches,
            "batch_size": args.batch_size,
        },
    }
    server = None
    settings = None
    staff: tuple[str, str, int] | None = None
    try:
        if args.customers:
            home = work / "home"
            report["demo"] = build_demo_home(home, args.customers)
        else:
            home = args.home.resolve()
            if not (home / "keepwell.db").exists():
                raise SystemExit(f"{home} holds no keepwell.db")
        events = work / "events"
        if events.exists():
            shutil.rmtree(events)
        started = time.perf_counter()
        shutil.copytree(home / "events", events)
        report["events_copy_seconds"] = round(time.perf_counter() - started, 1)
        report["home"] = str(home)
        settings = _settings(home, events, "bench-" + uuid.uuid4().hex)
        staff = make_staff(settings)
        ids = customer_ids(settings, max(args.requests, 2000), args.seed)
        server = Server(settings, work / "server.log")
        report["server_start_seconds"] = round(server.started, 1)
        report["pages"] = asyncio.run(
            bench_pages(
                server.url,
                staff[0],
                ids,
                concurrency=args.concurrency,
                requests=args.requests,
            )
        )
        batches = make_batches(ids, batches=args.batches, size=args.batch_size, seed=args.seed)
        report["ingestion"] = bench_ingestion(server.url, staff[1], settings, batches)
    finally:
        if server is not None:
            server.stop()
        if staff is not None and settings is not None:
            retire_staff(settings, staff[0], staff[2])
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
