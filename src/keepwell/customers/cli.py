"""`keepwell customers ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="customers", no_args_is_help=True)
