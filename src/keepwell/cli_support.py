"""What every CLI sub-app shares: the console, settings, the store, progress bars, errors.

CLI modules stay thin: parse arguments, call one service function, render with Rich.
"""

from __future__ import annotations

import functools
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.db import engine_from_settings, require_schema, session_scope
from keepwell.errors import KeepwellError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")


def load_settings() -> Settings:
    """Settings from the environment, or a clear error when they are invalid."""
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError, rendered in one line
        raise KeepwellError(
            f"invalid configuration: {exc}".splitlines()[0],
            hint="check the KEEPWELL_* environment variables",
        ) from exc


def open_engine(settings: Settings, *, require: bool = True) -> Engine:
    """The operational-store engine; by default insist that it is migrated."""
    engine = engine_from_settings(settings)
    if require:
        try:
            require_schema(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


@contextmanager
def unit_of_work(settings: Settings) -> Iterator[Session]:
    """A session on the migrated store, committed once when the block succeeds."""
    engine = open_engine(settings)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def progress() -> Progress:
    """A Rich progress bar for long work (imports, generation, scoring)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def fail(message: str, *, hint: str | None = None) -> typer.Exit:
    """Print one clear error line (plus a hint) and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}")
    if hint:
        err_console.print(f"[dim]hint:[/] {hint}")
    return typer.Exit(code=1)


_TYPER_ERRORS = getattr(typer, "TyperException", click.exceptions.ClickException)
"""Typer >= 0.20 vendors click: its usage errors are not click's classes."""


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn keepwell's errors (and a few OS errors) into one line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except KeepwellError as exc:
            raise fail(exc.message, hint=exc.hint) from None
        except FileNotFoundError as exc:
            raise fail(f"file not found: {exc.filename}", hint="check the path") from None
        except PermissionError as exc:
            raise fail(f"permission denied: {exc.filename}") from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException, _TYPER_ERRORS):
            raise  # usage errors (e.g. typer.BadParameter): Typer prints them itself
        except Exception as exc:  # a bug: one line for the user, the traceback in a file
            if os.environ.get("KEEPWELL_DEBUG"):
                raise
            path = Path(tempfile.gettempdir()) / "keepwell-last-error.txt"
            path.write_text(traceback.format_exc(), encoding="utf-8")
            raise fail(
                f"unexpected error ({exc.__class__.__name__}: {exc})",
                hint=f"this is a bug in keepwell; the traceback is in {path} "
                "(set KEEPWELL_DEBUG=1 to see it here)",
            ) from None

    return wrapper
