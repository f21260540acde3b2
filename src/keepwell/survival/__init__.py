"""Survival analysis of customer lifetimes (lifelines): retention curves, hazard ratios,
median and expected remaining lifetime. See ``docs/survival.md``."""

from importlib import import_module

_LAZY = {
    "cox_model": "keepwell.survival.service",
    "expected_lifetimes": "keepwell.survival.service",
    "hazard_ratios": "keepwell.survival.service",
    "km_curves": "keepwell.survival.service",
    "lifetimes": "keepwell.survival.data",
    "remaining_lifetime": "keepwell.survival.service",
    "retention_curves": "keepwell.survival.service",
}
"""Public names and their modules, imported on first use (keeps the CLI start-up light)."""

__all__ = [
    "cox_model",
    "expected_lifetimes",
    "hazard_ratios",
    "km_curves",
    "lifetimes",
    "remaining_lifetime",
    "retention_curves",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
