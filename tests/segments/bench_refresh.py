"""Benchmark: segment refresh on N synthetic customers (default 100,000), SQLite and PostgreSQL.

    python -m tests.segments.bench_refresh --customers 100000 [--backend sqlite|postgresql|both]

Builds a fresh store (customers with industries, subscriptions, risk and NPS scores, usage
stats and tags), installs the ready-made segments plus a compound filter, then times: the first
refresh (everyone enters), a no-change refresh, and a refresh after 10% of customers changed.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import make_url

from keepwell import migrate
from keepwell.billing.models import Subscription
from keepwell.customers.models import Customer, Tag, customer_tags
from keepwell.db import make_engine, session_scope
from keepwell.risk.models import RiskScore
from keepwell.segments import service
from keepwell.segments.defaults import install_defaults
from keepwell.segments.models import CustomerStats
from keepwell.surveys.models import SurveyResponse

INDUSTRIES = ["travel", "hospitality", "events", "retail", "software", "finance", "health"]
BANDS = ["daily", "weekly", "monthly", "less than monthly"]
BATCH = 10_000
COMPOUND = (
    'industry in ["travel", "hospitality"] and mrr >= 100 and risk >= 0.6 '
    'and usage_band = "less than monthly" and not tag = "vip"'
)


def _batches(rows):
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def build(engine, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=400)
    with session_scope(engine) as s:
        customers = [
            {
                "external_id": f"c{i:07d}",
                "name": f"Customer {i}",
                "industry": rng.choice(INDUSTRIES),
                "signup_at": start + timedelta(days=rng.randrange(300)),
                "time_zone": "UTC",
                "status": "churned" if rng.random() < 0.1 else "active",
                "attributes": {"plan_tier": rng.choice(["gold", "silver"])},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]
        for chunk in _batches(customers):
            s.execute(insert(Customer), chunk)
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id)))
        subs, risks, stats, nps = [], [], [], []
        for i, cid in enumerate(ids):
            ended = now - timedelta(days=10) if rng.random() < 0.15 else None
            subs.append(
                {
                    "external_id": f"s{i}",
                    "customer_id": cid,
                    "plan": "pro",
                    "mrr_minor": rng.choice([4900, 9900, 19900, 49900]),
                    "currency": "USD",
                    "started_at": start,
                    "ended_at": ended,
                    "status": "active" if ended is None else "canceled",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for k in range(2):
                p = rng.random()
                band = "high" if p >= 0.2 else "medium" if p >= 0.08 else "low"
                risks.append(
                    {
                        "customer_id": cid,
                        "scored_at": now - timedelta(days=30 * (2 - k)),
                        "as_of": now - timedelta(days=30 * (2 - k)),
                        "model_version": "bench",
                        "probability": p,
                        "band": band,
                        "reasons": [],
                    }
                )
            if rng.random() < 0.8:
                days = rng.randrange(120)
                stats.append(
                    {
                        "customer_id": cid,
                        "as_of": now,
                        "usage_band": rng.choice(BANDS),
                        "active_days_28d": rng.randrange(28),
                        "events_28d": rng.randrange(500),
                        "days_since_last_event": days,
                        "last_event_at": now - timedelta(days=days),
                        "refreshed_at": now,
                    }
                )
            if rng.random() < 0.3:
                nps.append(
                    {
                        "external_id": f"n{i}",
                        "customer_id": cid,
                        "kind": "nps",
                        "score": rng.randrange(11),
                        "responded_at": now - timedelta(days=rng.randrange(200)),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        for model, rows in (
            (Subscription, subs),
            (RiskScore, risks),
            (CustomerStats, stats),
            (SurveyResponse, nps),
        ):
            for chunk in _batches(rows):
                s.execute(insert(model), chunk)
        s.add(Tag(name="vip"))
        s.flush()
        vip = s.scalar(select(Tag.id).where(Tag.name == "vip"))
        tagged = [{"customer_id": c, "tag_id": vip, "created_at": now} for c in ids[::7]]
        for chunk in _batches(tagged):
            s.execute(insert(customer_tags), chunk)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


def _timed(label: str, engine, fn) -> float:
    with session_scope(engine) as s:
        t0 = time.perf_counter()
        results = fn(s)
        seconds = time.perf_counter() - t0
    entered = sum(r.entered for r in results.values())
    left = sum(r.left for r in results.values())
    members = {k: r.members for k, r in results.items()}
    print(f"  {label:<34} {seconds:7.2f} s  entered {entered:>7,} left {left:>7,}")
    return seconds, members


def bench(url: str, n: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    t0 = time.perf_counter()
    build(engine, n)
    print(f"{engine.dialect.name}: built {n:,} customers in {time.perf_counter() - t0:.1f} s")
    with session_scope(engine) as s:
        install_defaults(db_session=s)
        service.create_segment(db_session=s, name="Compound", filter_text=COMPOUND)
    _, members = _timed(
        "first refresh_all (8 segments)", engine, lambda s: service.refresh_all(db_session=s)
    )
    print("  members: " + ", ".join(f"{k} {v:,}" for k, v in members.items()))
    _timed("refresh_all, nothing changed", engine, lambda s: service.refresh_all(db_session=s))
    with session_scope(engine) as s:
        s.execute(
            update(CustomerStats)
            .where(CustomerStats.customer_id % 10 == 0)
            .values(usage_band="less than monthly", days_since_last_event=45)
        )
    _timed("refresh_all after 10% changed", engine, lambda s: service.refresh_all(db_session=s))
    for name in ("At risk", "Compound"):

        def one(s, name=name):
            seg = service.get_segment(db_session=s, name_or_id=name)
            return {name: service.refresh(db_session=s, segment=seg)}

        _timed(f"refresh {name!r} alone", engine, one)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            bench(f"sqlite:///{Path(tmp) / 'bench.db'}", args.customers)
    if args.backend in ("postgresql", "both"):
        admin = make_engine(args.pg_url).execution_options(isolation_level="AUTOCOMMIT")
        name = f"keepwell_segbench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            bench(make_url(args.pg_url).set(database=name).render_as_string(False), args.customers)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
