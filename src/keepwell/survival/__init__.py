"""Survival analysis of customer lifetimes (lifelines): retention curves, hazard ratios,
median and expected remaining lifetime. See ``docs/survival.md``."""

from keepwell.survival.data import lifetimes
from keepwell.survival.service import (
    cox_model,
    expected_lifetimes,
    hazard_ratios,
    km_curves,
    remaining_lifetime,
    retention_curves,
)

__all__ = [
    "cox_model",
    "expected_lifetimes",
    "hazard_ratios",
    "km_curves",
    "lifetimes",
    "remaining_lifetime",
    "retention_curves",
]
