"""Run automation on a schedule: the loop the server starts in a background thread."""

from __future__ import annotations

import logging
import threading

from keepwell.config import Settings

log = logging.getLogger("keepwell.automation")


def run_once(settings: Settings):
    """One automation run in its own transaction (committed when it succeeds)."""
    from keepwell.automation.service import run
    from keepwell.db import engine_from_settings, require_schema, session_scope, write_engine

    engine = engine_from_settings(settings)
    try:
        require_schema(engine)
        # it writes beside the web server: take SQLite's write lock at BEGIN (see write_engine)
        with session_scope(write_engine(engine)) as db_session:
            return run(db_session=db_session, settings=settings)
    finally:
        engine.dispose()


def run_scheduler(
    settings: Settings,
    interval_seconds: float,
    *,
    stop: threading.Event | None = None,
    max_runs: int | None = None,
    wait_first: bool = False,
) -> int:
    """Run automation every ``interval_seconds`` until ``stop`` is set; return the run count.

    The first run is at once, or one interval after the start with ``wait_first`` (the
    server's choice: starting up does not fire rules). A failing run is logged and the loop
    goes on (the next run retries what failed). Runs are idempotent, so two schedulers (or
    cron and the server) never fire an occurrence twice: the firings' unique dedup key settles
    any race.
    """
    if interval_seconds <= 0:
        from keepwell.errors import InvalidInput

        raise InvalidInput("must be positive", field="interval_seconds")
    stop = stop or threading.Event()
    runs = 0
    if wait_first:
        stop.wait(interval_seconds)
    while not stop.is_set():
        try:
            report = run_once(settings)
            log.info(
                "automation run: %d fired, %d retried", len(report.firings), len(report.retried)
            )
        except Exception:  # keep the loop alive; the error is in the log
            log.exception("automation run failed")
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        stop.wait(interval_seconds)
    return runs
