"""Month summaries of the daily rollup: one row per customer and local month, kept beside it.

Monthly and quarterly reports ask the same questions of every customer and month (active
days, last active day, active days among the month's last 7 and 28 days, events per type:
:mod:`keepwell.metrics.period_activity`). Summing 30 customer-days into each answer is most of
a report's work, so the rollup keeps those sums per month, next to its daily rows:

==============  =======  ==========================================================================
customer_id     string   the customer's external id
month           date     first day of the local month (the rollup's time zone)
active_days     int64    days of the month with at least one event
last_day        date     the month's last active day
d_7, d_28       int64    active days among the month's last 7 / 28 days
n_<type>        int64    events of each type in the month (null: none)
==============  =======  ==========================================================================

Stored as Parquet under ``<rollup>/_months/``, one folder per month, listed by
``manifest.json`` with a *fingerprint* per month: the names of the daily files whose days
(Parquet min/max statistics) reach into it. :meth:`MonthSummaries.update`, which the rollup
runs after every rebuild, refresh and compaction, rebuilds exactly the months whose
fingerprint changed -- after a daily refresh, the month of the new day -- so the cost follows
the new data. :meth:`MonthSummaries.current` returns the files only when every month matches the
rollup's current snapshot; otherwise readers use the daily rows (identical results).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from keepwell.metrics.daily import COUNT_PREFIX

log = logging.getLogger(__name__)

MONTHS_DIR = "_months"
VERSION = 2
"""Layout of the summaries; a manifest of another version is rebuilt whole."""
WINDOWS = (7, 28)
"""Trailing windows (days at the end of each month) the summaries count active days in."""
FEATURE_WINDOW = 28
"""The per-customer features' window: events, events per type (``n28_<type>``) and active
days in the month's last 28 days, and active days and events in the 56 days ending with it
(``d_56``, ``e_56``, reaching into the month before)."""
WINDOW_PREFIX = f"n{FEATURE_WINDOW}_"
KEEP_SECONDS = 3600
"""Replaced month folders stay this long for readers still using them."""


def _month(day: date) -> date:
    return day.replace(day=1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_RANGES: dict[tuple[str, int], tuple[date, date] | None] = {}
"""Day ranges read so far, by (path, size): a rollup file never changes under its name."""


def day_ranges(files: list[str]) -> dict[str, tuple[date, date] | None]:
    """(first, last) ``day`` of each daily rollup file, from its Parquet statistics (None: no
    statistics or no rows). Remembered per file, so each footer is read once per process."""
    if len(_RANGES) > 100_000:
        _RANGES.clear()
    out: dict[str, tuple[date, date] | None] = {}
    for path in files:
        key = (path, os.stat(path).st_size)
        if key not in _RANGES:
            _RANGES[key] = _day_range(path)
        out[path] = _RANGES[key]
    return out


def _day_range(path: str) -> tuple[date, date] | None:
    meta = pq.read_metadata(path)
    col = meta.schema.names.index("day")
    lo = hi = None
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        if rg.num_rows == 0:
            continue
        st = rg.column(col).statistics
        if st is None or not st.has_min_max:
            return None
        lo = st.min if lo is None else min(lo, st.min)
        hi = st.max if hi is None else max(hi, st.max)
    return None if lo is None else (lo, hi)


def fingerprints(files: list[str]) -> dict[date, str] | None:
    """Per month with daily rows in it or in the 56 days before its end, a digest of the
    names of the files with such rows (None when a file lacks statistics: the months it
    covers cannot be told)."""
    reach: dict[date, list[str]] = defaultdict(list)
    for path, span in day_ranges(files).items():
        if span is None:
            if pq.read_metadata(path).num_rows:
                return None
            continue
        month = _month(span[0])  # a month reads its days and the 56 before its end
        while _next(month) - timedelta(days=2 * FEATURE_WINDOW) <= span[1]:
            reach[month].append(Path(path).name)
            month = _next(month)
    return {
        m: hashlib.sha1("\n".join(sorted(names)).encode()).hexdigest() for m, names in reach.items()
    }


def _calendar(months: list[date]) -> str:
    """VALUES (day, month, own, in_7, in_28): each day of ``months`` under its own month (own
    = 1), and each day within 56 days of a month's end but before it under that month (own =
    0: a tail row); in_n = 1 for the month's own last n days."""
    span = 2 * FEATURE_WINDOW
    rows = []
    for month in months:
        end = _next(month)
        day = end - timedelta(days=span)
        while day < end:
            own = day >= month
            flags = [int(own and day >= end - timedelta(days=n)) for n in WINDOWS]
            values = ", ".join(map(str, [int(own), *flags]))
            rows.append(f"(DATE '{day}', DATE '{month}', {values})")
            day += timedelta(days=1)
    names = ", ".join(f"in_{n}" for n in WINDOWS)
    return f"(VALUES {', '.join(rows)}) AS cal(day, month, own, {names})"


def _summary_sql(src: str, types: list[str], one_row_per_day: bool, months: list[date]) -> str:
    """One row per customer and month of ``months`` from the daily rows of ``src``.

    A month's row also counts, for the trailing windows of a snapshot taken at its end, the
    days of the month before within :data:`FEATURE_WINDOW` x 2 days of that end ("tail" rows;
    a customer active only there gets a row with active_days = 0). Months and flags come from
    a small calendar joined on the day (date arithmetic per row costs ~10x more).
    """
    cols = ["events", *types]
    span = 2 * FEATURE_WINDOW
    lo, hi = months[0] - timedelta(days=span), _next(months[-1])
    where = f"day >= DATE '{lo}' AND day < DATE '{hi}'"
    if one_row_per_day:
        days = f"SELECT customer_id, day, {', '.join(cols)} FROM {src} WHERE {where}"
    else:  # partial rows: one row per customer-day first, so a day counts once
        sums = ", ".join(f"sum({c}) AS {c}" for c in cols)
        days = f"SELECT customer_id, day, {sums} FROM {src} WHERE {where} GROUP BY customer_id, day"
    w = FEATURE_WINDOW
    in_w = f"in_{w}"
    # 0/1 factors, not FILTER clauses: DuckDB aggregates them ~3x faster
    aggs = [
        "CAST(sum(own) AS BIGINT) AS active_days",
        "max(CASE WHEN own = 1 THEN day END) AS last_day",
        *(f"CAST(sum(in_{n}) AS BIGINT) AS d_{n}" for n in WINDOWS),
        *(f"CAST(sum({t} * own) AS BIGINT) AS {t}" for t in types),
        f"CAST(sum(events * {in_w}) AS BIGINT) AS e_{w}",
        f"count(*) AS d_{span}",
        f"CAST(sum(events) AS BIGINT) AS e_{span}",
        *(
            f"CAST(sum({t} * {in_w}) AS BIGINT) AS {WINDOW_PREFIX}{t.removeprefix(COUNT_PREFIX)}"
            for t in types
        ),
    ]
    return (
        f"SELECT customer_id, month, {', '.join(aggs)} "
        f"FROM ({days}) AS d JOIN {_calendar(months)} USING (day) GROUP BY customer_id, month"
    )


class MonthSummaries:
    """The month summaries of the rollup at ``rollup_path`` (see the module docstring)."""

    def __init__(self, rollup_path: Path) -> None:
        self.dir = Path(rollup_path) / MONTHS_DIR
        self.manifest_path = self.dir / "manifest.json"

    def _read(self) -> tuple[dict[str, dict], dict[str, float]]:
        """The months listed and the retired folders (none when the manifest is missing,
        unreadable or of another :data:`VERSION` of the layout)."""
        try:
            data = json.loads(self.manifest_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}, {}
        if data.get("version") != VERSION:
            return {}, {}
        return data.get("months", {}), dict(data.get("retired", {}))

    def current(self, files: list[str]) -> list[str] | None:
        """Every month's summary files, when all match ``files`` (the rollup's snapshot)."""
        prints = fingerprints(files)
        if prints is None:
            return None
        months, _ = self._read()
        if {m.isoformat() for m in prints} != set(months):
            return None
        out = []
        for month, digest in prints.items():
            entry = months[month.isoformat()]
            if entry["fingerprint"] != digest:
                return None
            out += [str(self.dir / entry["folder"] / f) for f in entry["files"]]
        return sorted(out)

    def update(
        self,
        files: list[str],
        *,
        one_row_per_day: Callable[[], bool],
        memory_limit: str = "3GB",
    ) -> list[date]:
        """Rebuild the months whose daily files changed and drop months no longer there;
        return the months rebuilt. ``one_row_per_day()`` (whether each customer-day is one
        row; it reads every file's footer) is asked only when a month is rebuilt."""
        prints = fingerprints(files)
        if prints is None:
            log.warning("rollup files without day statistics: month summaries not kept")
            return []
        old, retired = self._read()
        stale = sorted(
            m for m, d in prints.items() if old.get(m.isoformat(), {}).get("fingerprint") != d
        )
        months = {m: e for m, e in old.items() if date.fromisoformat(m) in prints}
        if stale:
            months.update(self._build(files, stale, prints, one_row_per_day(), memory_limit))
        listed = {e["folder"] for e in months.values()}
        now = time.time()
        for entry in old.values():  # replaced or dropped: kept a while for running readers
            if entry["folder"] not in listed:
                retired.setdefault(entry["folder"], now)
        cutoff = now - KEEP_SECONDS
        gone = {f for f, at in retired.items() if at < cutoff}
        retired = {f: at for f, at in retired.items() if f not in gone}
        if stale or set(months) != set(old) or gone:
            self._write_manifest(months, retired)
        self._drop(gone, listed | set(retired))
        return stale

    def _build(
        self,
        files: list[str],
        stale: list[date],
        prints: dict[date, str],
        one_row_per_day: bool,
        memory_limit: str,
    ) -> dict[str, dict]:
        """Summaries of the ``stale`` months, one query for all, into new folders."""
        spans = day_ranges(files)
        lo, hi = stale[0], _next(stale[-1])
        first = lo - timedelta(days=2 * FEATURE_WINDOW)
        reading = [f for f, s in spans.items() if s is not None and s[0] < hi and s[1] >= first]
        scratch = self.dir / f"tmp-{uuid.uuid4().hex}"
        scratch.mkdir(parents=True)
        try:
            con = duckdb.connect()
            try:
                con.execute(f"SET memory_limit = {_quote(memory_limit)}")
                con.execute(f"SET temp_directory = {_quote(str(scratch / 'spill'))}")
                con.execute("SET preserve_insertion_order = false")
                src = (
                    f"read_parquet([{', '.join(_quote(f) for f in reading)}], union_by_name = true)"
                )
                columns = con.execute(f"SELECT * FROM {src} LIMIT 0").description
                types = [c[0] for c in columns if c[0].startswith(COUNT_PREFIX)]
                out = _quote(str(scratch / "out"))
                con.execute(
                    f"COPY ({_summary_sql(src, types, one_row_per_day, stale)}) TO {out} "
                    "(FORMAT parquet, PARTITION_BY (month), WRITE_PARTITION_COLUMNS true)"
                )
            finally:
                con.close()
            built = {}
            for month in stale:
                part = scratch / "out" / f"month={month.isoformat()}"
                folder = f"{month:%Y-%m}-{uuid.uuid4().hex[:12]}"
                (self.dir / folder).mkdir()
                names = []
                for f in sorted(part.glob("*.parquet")) if part.exists() else []:
                    f.rename(self.dir / folder / f.name)
                    names.append(f.name)
                built[month.isoformat()] = {
                    "fingerprint": prints[month],
                    "folder": folder,
                    "files": names,
                }
            return built
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _write_manifest(self, months: dict[str, dict], retired: dict[str, float]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"manifest-{uuid.uuid4().hex}.json"
        data = {"version": VERSION, "months": dict(sorted(months.items())), "retired": retired}
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.manifest_path)

    def _drop(self, gone: set[str], keep: set[str]) -> None:
        """Delete the folders retired more than :data:`KEEP_SECONDS` ago, and leftovers of
        interrupted builds (neither listed nor retired) as old as that."""
        if not self.dir.exists():
            return
        cutoff = time.time() - KEEP_SECONDS
        for child in self.dir.iterdir():
            if not child.is_dir() or child.name in keep:
                continue
            if child.name in gone or child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
