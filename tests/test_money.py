from decimal import Decimal

import pytest

from keepwell.money import format_money, to_major, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("12.345", "USD", 1234),  # half-even
        ("12.355", "USD", 1236),
        ("1000", "JPY", 1000),  # no decimals
        ("1.234", "BHD", 1234),  # three decimals
        (Decimal("0.01"), "eur", 1),
    ],
)
def test_to_minor(amount, currency, minor) -> None:
    assert to_minor(amount, currency) == minor


def test_round_trip_and_format() -> None:
    assert to_major(123456, "USD") == Decimal("1234.56")
    assert format_money(123456, "USD") == "$1,234.56"
    assert format_money(500, "JPY") == "¥500"
    assert format_money(0, None) == "-"
