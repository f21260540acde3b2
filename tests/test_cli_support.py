"""The CLI's error handling: keepwell errors in one line, usage errors left to Typer."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from keepwell.cli_support import handle_errors
from keepwell.errors import InvalidInput

app = typer.Typer()


@app.command()
@handle_errors
def check(value: str) -> None:
    if value == "usage":
        raise typer.BadParameter("expected a day such as 2026-11-01")
    raise InvalidInput("no such thing", field="value", expected="a known thing")


def test_bad_parameter_is_a_usage_error_not_a_bug() -> None:
    result = CliRunner().invoke(app, ["usage"])
    assert result.exit_code == 2
    assert "expected a day such as 2026-11-01" in result.output
    assert "unexpected error" not in result.output


def test_keepwell_errors_are_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(app, ["other"])
    assert result.exit_code == 1
    assert "error:" in result.output and "no such thing" in result.output
    assert "Traceback" not in result.output
