"""Checks for metric parameters: a bad value raises :class:`~keepwell.errors.InvalidInput`
naming the parameter and what would have been accepted, before any query is built."""

from __future__ import annotations

from keepwell.errors import InvalidInput


def check_whole(value: object, name: str, *, minimum: int = 1) -> None:
    """Raise unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(
            f"{name} must be a whole number >= {minimum}, got {value!r}",
            field=name,
            expected=f"an integer >= {minimum}",
        )


def check_fraction(value: object, name: str) -> None:
    """Raise unless ``value`` is a number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise InvalidInput(
            f"{name} must be a fraction, got {value!r}",
            field=name,
            expected="a number in (0, 1], e.g. 0.8 for 80%",
        )
