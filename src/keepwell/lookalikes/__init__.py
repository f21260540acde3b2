"""Lookalikes: customers or prospects most similar to the best retained customers
(scikit-learn nearest neighbours on behaviour and firmographics). See ``docs/lookalikes.md``."""

from importlib import import_module

_LAZY = {
    "LookalikeResult": "keepwell.lookalikes.service",
    "find_lookalikes": "keepwell.lookalikes.service",
}
"""Public names and their modules, imported on first use (keeps the CLI start-up light)."""

__all__ = ["LookalikeResult", "find_lookalikes"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
