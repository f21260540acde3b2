"""The public names of ``keepwell.risk`` resolve (lazily) to the objects of their modules."""

from __future__ import annotations

import importlib

import pytest

import keepwell.risk


@pytest.mark.parametrize("name", keepwell.risk.__all__)
def test_exported_names_resolve(name: str) -> None:
    module = importlib.import_module(keepwell.risk._EXPORTS[name])
    assert getattr(keepwell.risk, name) is getattr(module, name)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = keepwell.risk.nope


@pytest.mark.parametrize("module", ["keepwell.risk.evaluate", "keepwell.risk.reasons"])
def test_docstring_examples(module: str) -> None:
    import doctest

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
