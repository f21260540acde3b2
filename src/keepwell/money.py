"""Money helpers: integer minor units + ISO 4217 code <-> decimal amounts and display text."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from babel.numbers import format_currency, get_currency_precision


def decimals(currency: str) -> int:
    """Number of decimals of ``currency`` (USD 2, JPY 0, BHD 3), from CLDR via Babel."""
    return get_currency_precision(currency.upper())


def to_minor(amount: Decimal | str | float, currency: str) -> int:
    """Major units -> integer minor units, rounded half-even (``12.345 USD`` -> 1234)."""
    scale = Decimal(10) ** decimals(currency)
    return int((Decimal(str(amount)) * scale).to_integral_value(rounding=ROUND_HALF_EVEN))


def to_major(amount_minor: int, currency: str) -> Decimal:
    """Integer minor units -> exact decimal major units (1234 USD -> 12.34)."""
    return Decimal(amount_minor) / (Decimal(10) ** decimals(currency))


def format_money(amount_minor: int, currency: str | None, *, locale: str = "en_US") -> str:
    """Display text: ``format_money(123456, 'USD')`` -> ``'$1,234.56'``."""
    if currency is None:
        return "-"
    return format_currency(to_major(amount_minor, currency), currency.upper(), locale=locale)
