"""Vectorised parsers: one Arrow/pandas pass per column, never a Python loop per cell.

Each parser takes a ``string`` Arrow array (cells trimmed, empty cells null), records the rows
it cannot accept in :class:`~keepwell.imports.problems.Problems` with a reason that says what was
expected, and returns the parsed column (null where the cell was empty or rejected).
"""

from __future__ import annotations

import functools
import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from babel import Locale
from babel.numbers import get_currency_precision, list_currencies

from keepwell.imports.problems import Problems, as_bool

TIMESTAMP_EXAMPLE = "2026-03-01T09:30:00Z"
EXPECTED_TIMESTAMP = f"expected ISO 8601 date/time, e.g. {TIMESTAMP_EXAMPLE}"

_ISO = (
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)
_OFFSET = r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_INTEGER = r"^[+-]?\d{1,18}(?:\.0*)?$"
_NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_AMOUNT = r"^(?P<units>\d{1,15})(?:\.(?P<fraction>\d*))?$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
_NOT_COUNTRIES = {"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"}  # CLDR groupings / placeholders


@functools.cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes known to CLDR (via Babel)."""
    territories = Locale("en").territories
    return frozenset(
        c for c in territories if len(c) == 2 and c.isalpha() and c not in _NOT_COUNTRIES
    )


@functools.cache
def currency_codes() -> frozenset[str]:
    """ISO 4217 codes known to CLDR (via Babel)."""
    return frozenset(list_currencies())


@functools.cache
def _zones_by_lower() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


def is_currency(code: str) -> bool:
    return code.upper() in currency_codes()


def is_time_zone(name: str) -> bool:
    return name.lower() in _zones_by_lower()


def currency_decimals(code: str) -> int:
    """Number of decimals of ``code``'s minor unit (USD 2, JPY 0, BHD 3)."""
    return get_currency_precision(code.upper())


def invalid(values: pa.Array, ok: pa.Array) -> pa.Array:
    """Rows that have a value, and it is not ok."""
    return pc.and_(pc.is_valid(values), pc.invert(ok.fill_null(False)))


def _matches(values: pa.Array, pattern: str) -> pa.Array:
    return pc.match_substring_regex(values, pattern).fill_null(False)


def too_long(values: pa.Array, *, field: str, problems: Problems, max_length: int | None) -> None:
    """Reject values longer than ``max_length`` characters."""
    if max_length is None:
        return
    long = pc.greater(pc.utf8_length(values), max_length)
    problems.add(
        long,
        field,
        lambda v: f"too long: {len(v or '')} characters, at most {max_length} allowed",
        values,
    )


def text(
    values: pa.Array, *, field: str, problems: Problems, max_length: int | None = None
) -> pa.Array:
    """Free text, at most ``max_length`` characters."""
    too_long(values, field=field, problems=problems, max_length=max_length)
    return values


def integer(
    values: pa.Array,
    *,
    field: str,
    problems: Problems,
    minimum: int | None = None,
    maximum: int | None = None,
) -> pa.Array:
    """Whole numbers (``12``, ``+3``, ``4.0``) within ``minimum``..``maximum``."""
    ok = _matches(values, _INTEGER)
    problems.add(invalid(values, ok), field, "expected a whole number, e.g. 3", values)
    digits = pc.replace_substring_regex(pc.if_else(ok, values, None), r"\.0*$", "")
    parsed = pc.cast(digits, pa.int64())
    if minimum is None and maximum is None:
        return parsed
    numbers = parsed.fill_null(0).to_numpy()
    out = as_bool(ok) & (
        (numbers < minimum if minimum is not None else False)
        | (numbers > maximum if maximum is not None else False)
    )
    if minimum is not None and maximum is not None:
        reason = f"must be between {minimum} and {maximum}"
    elif minimum is not None:
        reason = f"must be at least {minimum}"
    else:
        reason = f"must be at most {maximum}"
    problems.add(out, field, reason, values)
    return pa.array(numbers, mask=~(as_bool(ok) & ~out))


def number(values: pa.Array, *, field: str, problems: Problems) -> pa.Array:
    """Decimal numbers (``12``, ``-0.5``, ``1e3``) as float64."""
    ok = _matches(values, _NUMBER)
    problems.add(invalid(values, ok), field, "expected a number, e.g. 12.5", values)
    return pc.cast(pc.if_else(ok, values, None), pa.float64())


def choice(
    values: pa.Array, *, field: str, problems: Problems, choices: tuple[str, ...]
) -> pa.Array:
    """One of ``choices`` (compared case-insensitively, returned as listed)."""
    lowered = pc.utf8_lower(values)
    ok = pc.is_in(lowered, value_set=pa.array([c.lower() for c in choices]))
    problems.add(invalid(values, ok), field, f"expected one of: {', '.join(choices)}", values)
    index = pc.index_in(lowered, value_set=pa.array([c.lower() for c in choices]))
    return pc.take(pa.array(choices), index)


def email(values: pa.Array, *, field: str, problems: Problems) -> pa.Array:
    """An e-mail address (``name@domain.tld``, at most 320 characters)."""
    ok = pc.and_(_matches(values, _EMAIL), pc.less_equal(pc.utf8_length(values), 320))
    problems.add(
        invalid(values, ok), field, "invalid e-mail address, expected e.g. ana@example.com", values
    )
    return pc.if_else(ok, values, None)


def country(values: pa.Array, *, field: str, problems: Problems) -> pa.Array:
    """An ISO 3166-1 alpha-2 country code, returned upper-case."""
    upper = pc.utf8_upper(values)
    ok = pc.is_in(upper, value_set=pa.array(sorted(country_codes())))
    problems.add(
        invalid(values, ok),
        field,
        "unknown country code, expected ISO 3166-1 alpha-2, e.g. DE, US",
        values,
    )
    return pc.if_else(ok, upper, None)


def time_zone(values: pa.Array, *, field: str, problems: Problems) -> pa.Array:
    """An IANA time zone name (case-insensitive), returned in its canonical spelling."""
    zones = _zones_by_lower()
    keys = pa.array(list(zones))
    index = pc.index_in(pc.utf8_lower(values), value_set=keys)
    problems.add(
        invalid(values, pc.is_valid(index)),
        field,
        "unknown time zone, expected an IANA name, e.g. Europe/Berlin",
        values,
    )
    return pc.take(pa.array(list(zones.values())), index)


def currency(values: pa.Array, *, field: str, problems: Problems) -> pa.Array:
    """An ISO 4217 currency code, returned upper-case."""
    upper = pc.utf8_upper(values)
    ok = pc.is_in(upper, value_set=pa.array(sorted(currency_codes())))
    problems.add(
        invalid(values, ok), field, "unknown currency, expected ISO 4217, e.g. EUR, USD", values
    )
    return pc.if_else(ok, upper, None)


def timestamp(values: pa.Array, *, field: str, problems: Problems, tz: str) -> pa.Array:
    """ISO 8601 date/times as ``timestamp[us, UTC]``.

    A value with an offset (``Z``, ``+02:00``) is exact; one without is local time in ``tz``;
    a bare date is midnight. Local times that do not exist or are ambiguous in ``tz`` (at a
    daylight-saving change) are rejected rather than guessed.
    """
    shaped = _matches(values, _ISO)
    problems.add(invalid(values, shaped), field, EXPECTED_TIMESTAMP, values)
    with_offset = as_bool(pc.and_(shaped, _matches(values, _OFFSET)))
    naive = as_bool(shaped) & ~with_offset
    series = values.to_pandas()
    result = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    if with_offset.any():
        result[with_offset] = pd.to_datetime(
            series[with_offset], format="ISO8601", utc=True, errors="coerce"
        )
    unreal = np.zeros(len(series), dtype=bool)
    if naive.any():
        local = pd.to_datetime(series[naive], format="ISO8601", errors="coerce")
        zoned = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        result[naive] = zoned.dt.tz_convert("UTC")
        gap = np.zeros(len(series), dtype=bool)
        gap[np.flatnonzero(naive)] = (local.notna() & zoned.isna()).to_numpy()
        problems.add(
            gap,
            field,
            f"this local time does not exist or is ambiguous in {tz} (daylight-saving change); "
            "add a UTC offset, e.g. +01:00",
            values,
        )
        unreal[np.flatnonzero(naive)] = local.isna().to_numpy()
    unreal |= with_offset & result.isna().to_numpy()
    problems.add(
        unreal, field, "not a valid calendar date/time (years 1678-2261 are supported)", values
    )
    return pa.array(result.dt.floor("us"), type=pa.timestamp("ns", tz="UTC")).cast(
        pa.timestamp("us", tz="UTC")
    )


def minor_units(values: pa.Array, *, field: str, problems: Problems) -> pa.Array:
    """Whole minor units (``4900`` cents), never negative."""
    negative = _matches(values, r"^-\s*\d")
    problems.add(negative, field, "must not be negative", values)
    ok = _matches(values, r"^\+?\d{1,18}$")
    problems.add(
        pc.and_(invalid(values, ok), pc.invert(negative)),
        field,
        "expected a whole number of minor units (e.g. cents), e.g. 4900",
        values,
    )
    return pc.cast(pc.if_else(ok, values, None), pa.int64())


def major_units(
    values: pa.Array, *, field: str, problems: Problems, decimals: np.ndarray
) -> pa.Array:
    """Decimal amounts in major units (``49.90``) converted exactly to minor units.

    ``decimals[i]`` is the minor-unit exponent of row i's currency (USD 2, JPY 0); more
    significant decimals than that (``49.999`` USD) are rejected, never rounded.
    """
    negative = _matches(values, r"^-\s*\d")
    problems.add(negative, field, "must not be negative", values)
    ok = _matches(values, _AMOUNT)
    problems.add(
        pc.and_(invalid(values, ok), pc.invert(negative)),
        field,
        "expected a non-negative amount with '.' as decimal point, e.g. 49.90",
        values,
    )
    parts = pc.extract_regex(pc.if_else(ok, values, None), _AMOUNT)
    units = pc.cast(pc.struct_field(parts, "units"), pa.int64()).fill_null(0).to_numpy()
    fraction = pc.replace_substring_regex(
        pc.struct_field(parts, "fraction").fill_null(""), "0+$", ""
    )
    places = pc.utf8_length(fraction).to_numpy()
    valid = as_bool(ok)
    minor = np.zeros(len(values), dtype=np.int64)
    for exponent in (int(e) for e in np.unique(decimals)):
        rows = decimals == exponent
        excess = rows & valid & (places > exponent)
        problems.add(
            excess,
            field,
            f"too many decimal places: this currency has {exponent}",
            values,
        )
        valid &= ~excess
        if exponent == 0:
            fractional = np.zeros(len(values), dtype=np.int64)
        else:
            padded = pc.utf8_slice_codeunits(
                pc.utf8_rpad(fraction, width=exponent, padding="0"), 0, exponent
            )
            fractional = pc.cast(padded, pa.int64()).to_numpy()
        minor = np.where(rows, units * 10**exponent + fractional, minor)
    return pa.array(minor, mask=~valid)


def tags(values: pa.Array, *, field: str, problems: Problems, max_length: int) -> pa.Array:
    """Names separated by ``;`` as a list per row (trimmed, empty names dropped, deduplicated)."""
    parts = pc.split_pattern(values, ";")
    flat = pc.utf8_trim_whitespace(pc.list_flatten(parts))
    parents = pc.list_parent_indices(parts)
    long = pc.greater(pc.utf8_length(flat), max_length).fill_null(False)
    mask = np.zeros(len(values), dtype=bool)
    mask[np.asarray(pc.filter(parents, long))] = True
    problems.add(mask, field, f"a tag name is longer than {max_length} characters", values)
    return pa.ListArray.from_arrays(parts.offsets, flat, mask=pc.invert(pc.is_valid(parts)))
