"""Small expression helpers for shaping metric results the same way on every backend.

* :func:`ratio` -- float division that is null (not an error, not infinity) when the
  denominator is 0 or null.
* :func:`sum_over_frame` -- per-group sums in which every group of a *frame* appears, with 0
  where no row contributes; it unions zero rows instead of left-joining, so group keys that
  are null (a customer without an industry or tag) stay one group and still match.
* :func:`group_unless_alone` -- a group-by that passes rows known to be alone in their group
  straight through (most customers have one spell, one subscription row, one month row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def group_unless_alone(
    rows: ir.Table, keys: Sequence[str], values: Mapping[str, str], alone: ir.BooleanValue
) -> ir.Table:
    """``rows`` grouped by ``keys`` with each of ``values`` (column -> "sum" or "max").

    Rows where ``alone`` holds must be the only row of their group (e.g. a customer with one
    spell): the sum or max of one row is the row, so they skip the aggregation, which costs
    most with millions of groups; the others are grouped. Columns: keys, values.
    """
    unknown = sorted({how for how in values.values()} - {"sum", "max"})
    if unknown:
        raise ValueError(f"group_unless_alone reduces with sum or max, not {unknown}")
    keys = list(keys)
    t = rows.mutate(_alone=alone)
    one = t.filter(t._alone).select(*keys, *values)
    many = t.filter(~t._alone)
    many = many.group_by(keys).aggregate(
        **{c: getattr(many[c], how)() for c, how in values.items()}
    )
    return one.union(many)
