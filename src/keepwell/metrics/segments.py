"""Segment filters and breakdowns shared by every metric.

``filters`` keep customers whose field equals a value (or is in a list of values); the field is
any ``customers`` column (``industry``, ``country``, ``status``, ``owner``, ``attr_<name>``) or
``tag``. ``by`` names the fields to break results down by (same names). A customer with several
tags appears once per tag in a ``by=["tag"]`` breakdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis.expr.types as ir

from keepwell.errors import InvalidInput
from keepwell.metrics.sources import Sources

Filters = Mapping[str, str | Sequence[str]]


def _check(src: Sources, names: Sequence[str], what: str) -> None:
    allowed = set(src.customers.columns) - {"customer_id", "signup_at"} | {"tag"}
    for name in names:
        if name not in allowed:
            raise InvalidInput(
                f"unknown {what} field {name!r}", field=what, expected=", ".join(sorted(allowed))
            )


def segment_keys(
    src: Sources, *, filters: Filters | None = None, by: Sequence[str] = ()
) -> ir.Table | None:
    """customer_id plus the ``by`` columns for customers passing ``filters``.

    Returns None when there is nothing to filter or break down (all customers, one group).
    """
    filters = dict(filters or {})
    by = list(by)
    _check(src, list(filters), "filter")
    _check(src, by, "by")
    if not filters and not by:
        return None
    c = src.customers
    if "tag" in by or "tag" in filters:
        c = c.left_join(src.customer_tags, "customer_id").select(
            *[c[col] for col in c.columns], tag=src.customer_tags.tag
        )
    preds = []
    for name, value in filters.items():
        values = [value] if isinstance(value, str) else list(value)
        preds.append(c[name].isin(values))
    if preds:
        c = c.filter(*preds)
    return c.select("customer_id", *by).distinct()


def restrict(table: ir.Table, keys: ir.Table | None) -> ir.Table:
    """``table`` limited to (and widened with the ``by`` columns of) the segment ``keys``."""
    if keys is None:
        return table
    return table.join(keys, "customer_id")
