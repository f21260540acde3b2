"""``keepwell.web.server:app``: the application built from the environment (for uvicorn).

While the server runs, two background threads work beside it:

* automation, every ``automation_interval_seconds`` (the first run one interval after
  start-up; 0 = off);
* the dashboard warmer, which checks every ``warm_interval_seconds`` (the first time at
  start-up; 0 = off) whether the data changed and, if so, recomputes the dashboard's figures
  (:func:`keepwell.reports.background.keep_warm`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from keepwell.config import Settings
from keepwell.web.app import create_app

log = logging.getLogger("keepwell.web")

STOP_TIMEOUT = 30.0
"""Seconds shutdown waits for a background run in progress (then leaves the daemon thread)."""

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
Loop = Callable[[FastAPI, threading.Event], None]


def build_app(settings: Settings | None = None) -> FastAPI:
    """The web application for ``settings`` (default: the environment), with the automation
    scheduler and the dashboard warmer started on start-up and stopped on shutdown when their
    intervals are above 0.

    ``app.state.automation_runs`` holds the scheduler's run count once it has stopped;
    ``app.state.warmed_versions`` lists the data versions the warmer computed.
    """
    settings = settings or Settings()
    app = create_app(settings)
    if settings.automation_interval_seconds > 0:
        app.router.lifespan_context = _with_thread(
            app.router.lifespan_context, "automation", _automation(settings)
        )
    if settings.warm_interval_seconds > 0:
        app.router.lifespan_context = _with_thread(
            app.router.lifespan_context, "warm", _warmer(settings)
        )
    return app


def _automation(settings: Settings) -> Loop:
    from keepwell.automation.scheduler import run_scheduler

    interval = settings.automation_interval_seconds

    def loop(app: FastAPI, stop: threading.Event) -> None:
        app.state.automation_runs = None
        log.info("automation runs every %d s", interval)
        app.state.automation_runs = run_scheduler(settings, interval, stop=stop, wait_first=True)

    return loop


def _warmer(settings: Settings) -> Loop:
    from keepwell.reports.background import keep_warm

    def loop(app: FastAPI, stop: threading.Event) -> None:
        app.state.warmed_versions = []
        keep_warm(
            settings,
            app.state.engine,
            settings.warm_interval_seconds,
            stop=stop,
            on_run=app.state.warmed_versions.append,
        )

    return loop


def _with_thread(inner: Lifespan, name: str, loop: Loop) -> Lifespan:
    """``inner`` plus a daemon thread ``keepwell-<name>`` running ``loop`` while the app
    serves (``app.state.<name>_thread``); shutdown sets its stop event and waits for it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        stop = threading.Event()
        thread = threading.Thread(
            target=loop, args=(app, stop), name=f"keepwell-{name}", daemon=True
        )
        setattr(app.state, f"{name}_thread", thread)
        async with inner(app) as state:
            thread.start()
            try:
                yield state
            finally:
                stop.set()
                await asyncio.to_thread(thread.join, STOP_TIMEOUT)
                if thread.is_alive():
                    log.warning("%s run still in progress at shutdown; left to exit", name)

    return lifespan


app = build_app()
