"""Dashboard figures without making a visitor wait for a computation.

After a data change (an import, new events, an edited customer) the dashboard's figures must be
computed again, which takes seconds on a large store. :func:`dashboard_view` never blocks a
page on that for long:

* figures stored for the current data version are returned at once (``fresh``);
* otherwise their computation starts in this process's background worker (one computation at a
  time; a second visitor joins the one under way) and the request waits for it up to ``wait``
  seconds;
* if it is still running then, the newest figures stored for an earlier data version are
  returned (``stale``, with the time they were computed; such a request waits at most
  :data:`STALE_WAIT`), or none (``computing``).

:func:`keep_warm` is the web server's loop: it recomputes the dashboard whenever the data
version changed, so visitors rarely see anything but fresh figures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import Engine

from keepwell.config import Settings
from keepwell.reports.cache import (
    DEFAULT_WARM,
    DashboardFigures,
    MetricsCache,
    NotCached,
    dashboard_figures,
    dashboard_range,
    data_version,
    stored_versions,
)

log = logging.getLogger("keepwell.reports.background")

State = Literal["fresh", "stale", "computing", "failed"]


@dataclass(frozen=True)
class DashboardView:
    """What the dashboard can show now: ``figures`` (None while ``computing`` or ``failed``)."""

    state: State
    figures: DashboardFigures | None
    error: str | None = None


STALE_WAIT = 2.0
"""Seconds a request waits for new figures when it has older ones to show meanwhile."""

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keepwell-dashboard")
_jobs: dict[tuple, Future[DashboardFigures]] = {}
_lock = threading.Lock()


def _stored(
    settings: Settings, engine: Engine, version: str, start: date, end: date, period: str
) -> DashboardFigures | None:
    try:
        with MetricsCache(settings, engine, version=version, compute=False) as cache:
            return dashboard_figures(cache, start=start, end=end, period=period)
    except (NotCached, OSError):
        return None


def _compute(settings: Settings, engine: Engine, start: date, end: date, period: str):
    with MetricsCache(settings, engine) as cache:
        return dashboard_figures(cache, start=start, end=end, period=period)


def submit(
    settings: Settings, engine: Engine, *, version: str, start: date, end: date, period: str
) -> Future[DashboardFigures]:
    """The background computation of these figures for ``version`` (started unless running)."""
    key = (str(settings.home.resolve()), version, start, end, period)
    with _lock:
        job = _jobs.get(key)
        if job is None:
            job = _executor.submit(_compute, settings, engine, start, end, period)
            _jobs[key] = job

            def forget(_done: Future, key: tuple = key) -> None:
                with _lock:
                    _jobs.pop(key, None)

            job.add_done_callback(forget)
    return job


def dashboard_view(
    settings: Settings, engine: Engine, *, start: date, end: date, period: str, wait: float
) -> DashboardView:
    """The dashboard's figures for [start, end) per ``period``, waiting at most ``wait`` s."""
    version = data_version(settings, engine)
    figures = _stored(settings, engine, version, start, end, period)
    if figures is not None:
        return DashboardView("fresh", figures)
    stale = None
    for older in stored_versions(settings):
        if older != version:
            stale = _stored(settings, engine, older, start, end, period)
            if stale is not None:
                break
    job = submit(settings, engine, version=version, start=start, end=end, period=period)
    try:
        return DashboardView("fresh", job.result(timeout=min(wait, STALE_WAIT) if stale else wait))
    except FutureTimeout:
        return DashboardView("stale", stale) if stale else DashboardView("computing", None)
    except Exception as exc:  # the computation failed: logged, shown, retried next visit
        log.error("dashboard figures failed", exc_info=exc)
        return DashboardView("failed", stale, f"{exc.__class__.__name__}: {exc}")


def keep_warm(
    settings: Settings,
    engine: Engine,
    interval_seconds: float,
    *,
    stop: threading.Event,
    on_run: Callable[[str], None] | None = None,
) -> None:
    """Until ``stop`` is set: every ``interval_seconds``, when the data version changed,
    compute the default dashboard ranges (:data:`~keepwell.reports.cache.DEFAULT_WARM`) in the
    background worker and wait for them. ``on_run`` receives each version warmed."""
    warmed: str | None = None
    while not stop.is_set():
        try:
            version = data_version(settings, engine)
            if version != warmed:
                for months, period in DEFAULT_WARM:
                    start, end = dashboard_range(months)
                    submit(
                        settings, engine, version=version, start=start, end=end, period=period
                    ).result()
                warmed = data_version(settings, engine)  # computing refreshes the rollup
                log.info("dashboard figures computed for data version %s", warmed)
                if on_run is not None:
                    on_run(warmed)
        except Exception:  # keep the loop alive; the error is in the log
            log.exception("warming the dashboard failed")
        stop.wait(interval_seconds)
