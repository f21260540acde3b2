"""Activity spells from usage alone, for businesses without subscriptions.

A customer is **active at t** when it had an event or an order in the ``inactivity_days``
before t: some event/order time x with x <= t < x + inactivity_days (end exclusive, like
subscriptions). A **spell** is a maximal run of activity: it starts at the first event/order
after a quiet spell longer than the window and ends ``inactivity_days`` after the last one --
that instant is the churn. A spell whose window has not run out yet simply ends in the future.
Orders count unless ``status`` is ``cancelled``.

The spells have the columns of :func:`keepwell.metrics.activity.spells`, so churn metrics can
use them in place of subscription spells.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from keepwell.errors import InvalidInput
from keepwell.metrics.sources import Sources


def activity_spells_from_events(
    src: Sources, *, inactivity_days: int = 30, include_orders: bool = True
) -> ir.Table:
    """Maximal usage spells per customer (see module docstring).

    Columns: customer_id, spell_no (1 = first), started_at, ended_at (last event/order +
    ``inactivity_days``), first_started_at (the customer's first-ever event/order), n_spells.
    """
    if inactivity_days <= 0:
        raise InvalidInput(
            f"the inactivity window must be positive, got {inactivity_days}",
            field="inactivity_days",
            expected="a number of days > 0",
        )
    e = src.events
    moments = e.select("customer_id", at=e.occurred_at.cast("timestamp"))
    if include_orders:
        o = src.orders
        o = o.filter(o.status.isnull() | (o.status != "cancelled"))
        moments = moments.union(o.select("customer_id", at=o.ordered_at.cast("timestamp")))
    m = moments.distinct()
    window = ibis.interval(days=inactivity_days)
    w = ibis.window(group_by=m.customer_id, order_by=m.at, rows=(None, -1))
    m = m.mutate(prev_end=(m.at.max().over(w) + window))
    m = m.mutate(starts=ibis.ifelse(m.prev_end.isnull() | (m.at > m.prev_end), 1, 0))
    cw = ibis.window(group_by=m.customer_id, order_by=m.at, rows=(None, 0))
    m = m.mutate(spell_no=m.starts.sum().over(cw).cast("int64"))
    out = m.group_by(["customer_id", "spell_no"]).aggregate(
        started_at=m.at.min(), ended_at=m.at.max() + window
    )
    first = out.group_by("customer_id").aggregate(
        first_started_at=out.started_at.min(), n_spells=out.count().cast("int64")
    )
    return out.join(first, "customer_id")
