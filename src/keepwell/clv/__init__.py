"""Customer lifetime value: subscription LTV (survival x MRR x margin) and repeat-purchase
CLV (BG/NBD + Gamma-Gamma via pymc-marketing, the optional ``clv`` extra). See ``docs/clv.md``."""

from keepwell.clv.service import (
    fit_repeat_purchase,
    order_transactions,
    repeat_purchase_values,
    subscription_ltv,
)

__all__ = [
    "fit_repeat_purchase",
    "order_transactions",
    "repeat_purchase_values",
    "subscription_ltv",
]
