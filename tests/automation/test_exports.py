"""The public API other domains call: names, keyword-only signatures, docstring examples."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest


@pytest.mark.parametrize(
    "module",
    ["keepwell.automation.service", "keepwell.journeys.service", "keepwell.automation.webhooks"],
)
def test_exported_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []


@pytest.mark.parametrize(
    ("func", "params"),
    [
        ("keepwell.automation.service:run", ["db_session", "settings", "now", "dry_run", "rule"]),
        (
            "keepwell.journeys.service:enrol",
            ["db_session", "journey", "customer_id", "reason", "now"],
        ),
        (
            "keepwell.automation.scheduler:run_scheduler",
            ["settings", "interval_seconds", "stop", "max_runs", "wait_first"],
        ),
    ],
)
def test_public_signatures(func: str, params: list[str]) -> None:
    module, name = func.split(":")
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    assert list(signature.parameters) == params


def test_docstring_examples() -> None:
    result = doctest.testmod(importlib.import_module("keepwell.automation.webhooks"))
    assert result.attempted > 0 and result.failed == 0
