"""Metric results cached on disk, keyed by (metric, parameters, data version).

The *data version* changes whenever anything a metric reads changes: the operational tables
(:func:`keepwell.metrics.operational.fingerprint`, which ignores login stamps), the event store
(its Delta version) and the daily rollup (the event-store version it covers). Reading it
costs a few indexed aggregate queries and two Delta log reads, never a scan of the events::

    with MetricsCache(settings, engine) as cache:
        df = cache.metric("churn", start=date(2025, 1, 1), end=date(2026, 1, 1), period="month")

returns the stored frame when the data did not change since it was computed, and otherwise
opens the metric sources once (bringing the rollup up to date), computes, and stores the result
under ``<home>/cache/metrics/<data version>/``. Results of older data versions are removed,
all but the newest :data:`KEEP_VERSIONS`. :meth:`MetricsCache.blob` caches derived bytes
(rendered charts) the same way.

:func:`dashboard_figures` is what the staff dashboard shows (its metrics and charts), and
:func:`warm` precomputes it (``keepwell report warm``) so the first visitor after a data load
does not wait.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from keepwell.config import Settings

log = logging.getLogger("keepwell.reports.cache")

__all__ = [
    "DASHBOARD_CHARTS",
    "KEEP_VERSIONS",
    "STATS",
    "CacheStats",
    "DashboardFigures",
    "MetricsCache",
    "NotCached",
    "dashboard_figures",
    "dashboard_range",
    "data_version",
    "stored_versions",
    "warm",
]

KEEP_VERSIONS = 3
"""How many data versions' results stay on disk (the newest by use)."""

FORMAT = 1
"""Bumped when the stored layout or a cached computation changes meaning."""


@dataclass
class CacheStats:
    """Process-wide counters: ``computed`` lists every metric/blob key computed on a miss."""

    hits: int = 0
    computed: list[str] = field(default_factory=list)

    @property
    def misses(self) -> int:
        return len(self.computed)

    def reset(self) -> None:
        self.hits = 0
        self.computed.clear()


STATS = CacheStats()
"""Counts of this process (tests check that a second page view computes nothing)."""


class NotCached(LookupError):
    """A read-only :class:`MetricsCache` holds no result for this key."""


def data_version(settings: Settings, engine: Engine) -> str:
    """A digest of the data behind every metric: the operational tables
    (:func:`keepwell.metrics.operational.fingerprint`), the event-store version, the rollup's
    coverage and the reporting time zone."""
    from keepwell.events.store import EventStore
    from keepwell.metrics.operational import fingerprint
    from keepwell.metrics.rollup import Rollup

    with engine.connect() as conn:
        operational = fingerprint(conn)
    parts = [
        FORMAT,
        operational,
        EventStore.from_settings(settings).version(),
        Rollup.from_settings(settings).store_version(),
        settings.reporting_timezone,
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def _key(kind: str, name: str, params: Mapping[str, Any]) -> str:
    text = json.dumps({"kind": kind, "name": name, **params}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def stored_versions(settings: Settings) -> list[str]:
    """The data versions with stored results, most recently written first."""
    root = settings.home.resolve() / "cache" / "metrics"
    dirs = [p for p in root.iterdir() if p.is_dir()] if root.exists() else []
    dirs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.name for p in dirs]


class MetricsCache:
    """The metrics cache of one store, for one unit of work (a page request, a warm run).

    The data version is read once, when first needed (or given: ``version``, e.g. an older one
    from :func:`stored_versions`). The metric sources are opened only on a miss (and closed by
    :meth:`close`, or the ``with`` block). With ``compute=False`` a miss raises
    :class:`NotCached` instead. :attr:`computed_at` is when the oldest result used was computed.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        stats: CacheStats = STATS,
        version: str | None = None,
        compute: bool = True,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.root = settings.home.resolve() / "cache" / "metrics"
        self.stats = stats
        self.compute = compute
        self._version: str | None = version
        self._src: Any = None
        self._oldest: float | None = None

    @property
    def computed_at(self) -> datetime:
        """When the oldest result this cache returned was computed (now if none yet)."""
        return datetime.fromtimestamp(self._oldest or time.time(), UTC)

    def _used(self, path: Path) -> None:
        stamp = path.stat().st_mtime
        self._oldest = stamp if self._oldest is None else min(self._oldest, stamp)
        self.stats.hits += 1

    def _miss(self, key: str) -> None:
        if not self.compute:
            raise NotCached(key)

    def __enter__(self) -> MetricsCache:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect the metric sources if a miss opened them."""
        if self._src is not None:
            self._src.con.disconnect()
            self._src = None

    @property
    def version(self) -> str:
        """The data version this cache reads and writes (see :func:`data_version`)."""
        if self._version is None:
            self._version = data_version(self.settings, self.engine)
        return self._version

    def sources(self) -> Any:
        """The metric sources (opened on first use; this refreshes the rollup, after which the
        data version is read again so results land under the version later visitors see)."""
        if self._src is None:
            from keepwell.metrics.sources import open_default

            self._src = open_default(self.settings, engine=self.engine)
            self._version = data_version(self.settings, self.engine)
        return self._src

    def _dir(self) -> Path:
        return self.root / self.version

    def _store(self, path: Path, write: Callable[[Path], None]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
        try:
            write(tmp)
            os.replace(tmp, path)
        except Exception:  # a cache that cannot be written is only slower
            log.warning("cannot store %s in the metrics cache", path.name, exc_info=True)
        finally:
            tmp.unlink(missing_ok=True)
        self._prune()

    def _prune(self) -> None:
        old = [v for v in stored_versions(self.settings) if v != self.version]
        for name in old[KEEP_VERSIONS - 1 :]:
            shutil.rmtree(self.root / name, ignore_errors=True)

    def metric(
        self,
        name: str,
        *,
        start: date | None = None,
        end: date | None = None,
        period: str | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        by: Sequence[str] = (),
        **extra: Any,
    ) -> pd.DataFrame:
        """:func:`keepwell.reports.service.run_metric` through the cache."""
        from keepwell.reports.service import run_metric

        params = {
            "start": start,
            "end": end,
            "period": period,
            "filters": {k: list(v) for k, v in (filters or {}).items()},
            "by": list(by),
            "extra": extra,
        }
        key = _key("metric", name, params)
        path = self._dir() / f"{key}.parquet"
        if path.exists():
            try:
                frame = pd.read_parquet(path)
                self._used(path)
                return frame
            except Exception:  # a damaged file: compute again
                log.warning("unreadable metrics cache file %s", path, exc_info=True)
        self._miss(key)
        src = self.sources()
        frame = run_metric(
            src, name, start=start, end=end, period=period, filters=filters, by=by, **extra
        )
        self.stats.computed.append(key)
        self._store(self._dir() / f"{key}.parquet", lambda p: frame.to_parquet(p, index=False))
        return frame

    def blob(self, name: str, params: Mapping[str, Any], make: Callable[[], bytes]) -> bytes:
        """Bytes derived from metric results (e.g. a chart), cached like a metric."""
        key = _key("blob", name, params)
        path = self._dir() / f"{key}.bin"
        if path.exists():
            data = path.read_bytes()
            self._used(path)
            return data
        self._miss(key)
        data = make()
        self.stats.computed.append(key)
        self._store(self._dir() / f"{key}.bin", lambda p: p.write_bytes(data))
        return data


# -- the dashboard ------------------------------------------------------------------------------

PERIODS = ("week", "month", "quarter")
DASHBOARD_CHARTS = ("cohort_heatmap", "retention_curve", "mrr_movements", "frequency_spectrum")
SPECTRUM_SEGMENT = "industry"


@dataclass
class DashboardFigures:
    """The dashboard's metric results for [start, end) and its charts as PNG bytes."""

    start: date
    end: date
    period: str
    frames: dict[str, pd.DataFrame]
    charts: dict[str, bytes]
    currency: str | None
    computed_at: datetime | None = None


def dashboard_range(months: int, *, today: date | None = None) -> tuple[date, date]:
    """The ``months`` complete months before the current one: ``(start, end)``, end exclusive."""
    today = today or date.today()
    end = today.replace(day=1)
    total = end.year * 12 + end.month - 1 - months
    return date(total // 12, total % 12 + 1, 1), end


def _main_currency(mrr: pd.DataFrame) -> str | None:
    if mrr.empty:
        return None
    return str(mrr.groupby("currency")["mrr_end"].sum().idxmax())


def dashboard_figures(
    cache: MetricsCache, *, start: date, end: date, period: str
) -> DashboardFigures:
    """Churn, MRR, NRR, stickiness, cohorts, retention and usage frequency for the dashboard,
    with its four charts, all through ``cache``."""
    from keepwell.reports import charts

    common = {"start": start, "end": end, "period": period}
    frames = {
        name: cache.metric(name, **common)
        for name in ("churn", "mrr", "nrr", "active_customers", "cohorts", "retention_curve")
    }
    frames["usage_frequency"] = cache.metric("usage_frequency", **common, by=[SPECTRUM_SEGMENT])
    currency = _main_currency(frames["mrr"])
    if currency:
        for name in ("mrr", "nrr"):
            df = frames[name]
            frames[name] = df[df["currency"] == currency].reset_index(drop=True)
    uf = frames["usage_frequency"]
    latest = uf[uf["period"] == uf["period"].max()] if len(uf) else uf
    makers: dict[str, Callable[[], Any] | None] = {
        "cohort_heatmap": (lambda: charts.cohort_heatmap(frames["cohorts"]))
        if len(frames["cohorts"])
        else None,
        "retention_curve": (lambda: charts.retention_curves(frames["retention_curve"]))
        if len(frames["retention_curve"])
        else None,
        "mrr_movements": (lambda: charts.mrr_movements(frames["mrr"]))
        if len(frames["mrr"])
        else None,
        "frequency_spectrum": (lambda: charts.frequency_spectrum(latest, segment=SPECTRUM_SEGMENT))
        if len(latest)
        else None,
    }
    rendered = {}
    for name, make in makers.items():
        if make is not None:
            rendered[name] = cache.blob(
                f"chart-{name}", {**common, "currency": currency}, lambda m=make: charts.png(m())
            )
    return DashboardFigures(start, end, period, frames, rendered, currency, cache.computed_at)


DEFAULT_WARM = ((12, "month"),)


def warm(
    settings: Settings,
    engine: Engine,
    *,
    ranges: Sequence[tuple[int, str]] = DEFAULT_WARM,
    today: date | None = None,
) -> int:
    """Compute the dashboard for each (months, period) in ``ranges``; returns how many results
    were computed (0 when everything was cached already)."""
    stats = CacheStats()
    with MetricsCache(settings, engine, stats=stats) as cache:
        for months, period in ranges:
            start, end = dashboard_range(months, today=today)
            dashboard_figures(cache, start=start, end=end, period=period)
    return stats.misses
