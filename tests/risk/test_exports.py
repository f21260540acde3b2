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
