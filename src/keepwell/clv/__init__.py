"""Customer lifetime value: subscription LTV (survival x MRR x margin) and repeat-purchase
CLV (BG/NBD + Gamma-Gamma via pymc-marketing, the optional ``clv`` extra). See ``docs/clv.md``."""

from importlib import import_module

_LAZY = {
    "fit_repeat_purchase": "keepwell.clv.service",
    "order_transactions": "keepwell.clv.service",
    "repeat_purchase_values": "keepwell.clv.service",
    "subscription_ltv": "keepwell.clv.service",
}
"""Public names and their modules, imported on first use (keeps the CLI start-up light)."""

__all__ = [
    "fit_repeat_purchase",
    "order_transactions",
    "repeat_purchase_values",
    "subscription_ltv",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
