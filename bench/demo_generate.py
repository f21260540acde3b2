"""Benchmark the demo generator: events written, wall time, events/s and peak memory.

    python3 bench/demo_generate.py                      # 1M customers, ~100M events
    python3 bench/demo_generate.py --customers 50000 --events-per-customer-day 0.45

The output directory is removed afterwards unless ``--keep`` is given (the data is large).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from keepwell.demo.generator import generate, worker_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument(
        "--events-per-customer-day",
        type=float,
        default=0.45,
        help="usage volume; 0.45 gives ~100M events for 1M customers over 24 months",
    )
    parser.add_argument("--business", choices=("saas", "shop"), default="saas")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="keepwell-demo-bench-"))
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 10 or done == total:
            last[0] = now
            print(f"  {stage}: {done:,}/{total:,} ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    try:
        manifest = generate(
            out,
            customers=args.customers,
            months=args.months,
            seed=args.seed,
            business=args.business,
            end=args.end,
            events_per_customer_day=args.events_per_customer_day,
            progress=progress,
        )
        wall = time.perf_counter() - started
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    # ru_maxrss is in KiB on Linux; chunks run in up to MAX_WORKERS worker processes.
    parent_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    workers = worker_count(args.customers)
    events = manifest.rows["events"]
    print(f"business              {args.business}")
    print(f"customers             {args.customers:,}")
    print(f"months                {args.months}")
    print(f"events/customer/day   {args.events_per_customer_day}")
    for kind, rows in manifest.rows.items():
        print(f"rows {kind:<17}{rows:,}")
    print(f"total events          {events:,}")
    print(f"event parts           {len(manifest.event_parts)}")
    print(f"output size           {size / 2**30:.2f} GiB")
    print(f"wall time             {wall:.1f} s")
    print(f"events/s              {events / wall:,.0f}")
    print(f"workers               {workers}")
    print(f"peak RSS parent       {parent_mib:,.0f} MiB")
    if workers > 1:
        print(f"peak RSS per worker   {worker_mib:,.0f} MiB (the largest)")
        total = parent_mib + workers * worker_mib
        print(f"peak RSS bound        {total:,.0f} MiB (parent + workers x largest worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
