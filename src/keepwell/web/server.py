"""``keepwell.web.server:app``: the application built from the environment (for uvicorn).

While the server runs, automation runs in a background thread every
``automation_interval_seconds`` (the first run one interval after start-up; 0 = off).
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
"""Seconds shutdown waits for an automation run in progress (then leaves the daemon thread)."""

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def build_app(settings: Settings | None = None) -> FastAPI:
    """The web application for ``settings`` (default: the environment), with the automation
    scheduler started on start-up and stopped on shutdown when its interval is above 0.

    ``app.state.automation_runs`` holds the scheduler's run count once it has stopped.
    """
    settings = settings or Settings()
    app = create_app(settings)
    if settings.automation_interval_seconds > 0:
        app.router.lifespan_context = _with_scheduler(
            app.router.lifespan_context, settings, settings.automation_interval_seconds
        )
    return app


def _with_scheduler(inner: Lifespan, settings: Settings, interval: int) -> Lifespan:
    from keepwell.automation.scheduler import run_scheduler

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        stop = threading.Event()
        app.state.automation_runs = None

        def loop() -> None:
            app.state.automation_runs = run_scheduler(
                settings, interval, stop=stop, wait_first=True
            )

        thread = threading.Thread(target=loop, name="keepwell-automation", daemon=True)
        app.state.automation_thread = thread
        async with inner(app) as state:
            thread.start()
            log.info("automation runs every %d s", interval)
            try:
                yield state
            finally:
                stop.set()
                await asyncio.to_thread(thread.join, STOP_TIMEOUT)
                if thread.is_alive():
                    log.warning("automation run still in progress at shutdown; left to exit")

    return lifespan


app = build_app()
