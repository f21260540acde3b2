"""Small expression helpers for shaping metric results the same way on every backend.

* :func:`ratio` -- float division that is null (not an error, not infinity) when the
  denominator is 0 or null.
* :func:`sum_over_frame` -- per-group sums in which every group of a *frame* appears, with 0
  where no row contributes; it unions zero rows instead of left-joining, so group keys that
  are null (a customer without an industry or tag) stay one group and still match.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir


def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """``num / den`` as float64; null when ``den`` is 0 or null."""
    return ibis.ifelse(
        den.fill_null(0) != 0, num.cast("float64") / den.cast("float64"), ibis.null("float64")
    )


def sum_over_frame(
    rows: ir.Table, frame: ir.Table, keys: Sequence[str], values: Sequence[str]
) -> ir.Table:
    """Sum the integer ``values`` of ``rows`` by ``keys``; every key row of ``frame`` appears.

    ``frame`` must have the ``keys`` columns (same types as in ``rows``).
    """
    keys = list(keys)
    zero = ibis.literal(0, type="int64")
    part = rows.select(*keys, **{v: rows[v].cast("int64") for v in values})
    empty = frame.select(*keys, **{v: zero for v in values})
    both = part.union(empty, distinct=False)
    return both.group_by(keys).aggregate(**{v: both[v].sum().cast("int64") for v in values})
