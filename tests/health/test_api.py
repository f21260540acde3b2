"""Public API of keepwell.health, survival, clv and lookalikes: exports exist; doctests run."""

from __future__ import annotations

import doctest
import importlib

import pytest

PACKAGES = ["keepwell.health", "keepwell.survival", "keepwell.clv", "keepwell.lookalikes"]
DOCTESTED = ["keepwell.health.config", "keepwell.health.backtest", "keepwell.clv.repeat"]


@pytest.mark.parametrize("name", PACKAGES)
def test_exported_members_exist(name) -> None:
    module = importlib.import_module(name)
    assert module.__all__
    for member in module.__all__:
        assert getattr(module, member) is not None


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples(name) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
