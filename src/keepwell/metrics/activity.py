"""Who is a customer when: subscription rows -> continuous *activity spells*.

Conventions (documented in ``docs/metrics.md``):

* A subscription row is in force at t when ``started_at <= t < ended_at`` (end exclusive;
  null = still running). A customer is **active** at t when a row is in force (or t falls in a
  grace gap, below).
* **Grace gap** (default 7 days): when a customer's rows stop and a new one starts within
  ``grace_days``, the gap is bridged -- it is neither churn nor reactivation, and the MRR of the
  rows that just ended carries over the gap.
* A **spell** is a maximal run of activity; its start is a *new* customer (first spell) or a
  *reactivation* (later spells), its end (if any) is a *churn*.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from keepwell.metrics.sources import Sources

FAR_FUTURE = datetime(2999, 12, 31)
"""Stand-in for "no end yet" inside queries (open-ended rows end here)."""


def _far() -> ir.TimestampScalar:
    return ibis.literal(FAR_FUTURE, type="timestamp")


def shared_table(src: Sources, key: tuple, build) -> ir.Table:
    """``build()``, computed once per :class:`Sources` on DuckDB as a temporary table.

    Many metrics of one report start from the same activity spells; a Sources' tables never
    change during its life (snapshots), so the first metric materialises them and the others
    read the result. The key holds every input table's expression, so a replaced table (a
    refreshed rollup, say) builds anew. Other backends get the expression (they run one
    metric per query anyway).
    """
    if src.backend != "duckdb":
        return build()
    memo = src.extra.setdefault("shared_tables", {})
    full_key = (*key, tuple((name, table.op()) for name, table in sorted(src.tables.items())))
    if full_key not in memo:
        name = f"kw_shared_{len(memo)}_{uuid.uuid4().hex[:8]}"
        memo[full_key] = src.con.create_table(name, build(), temp=True)
    return memo[full_key]


def shared(name: str) -> Callable[[Callable[..., ir.Table]], Callable[..., ir.Table]]:
    """Decorator: ``build(src, **params)`` (keyword parameters only) computed once per
    :class:`Sources` and parameter values, as :func:`shared_table` (the key is ``name`` and
    every parameter, so none can be left out of it)."""

    def wrap(build: Callable[..., ir.Table]) -> Callable[..., ir.Table]:
        @functools.wraps(build)
        def run(src: Sources, **params: Any) -> ir.Table:
            return shared_table(src, (name, frozen(params)), lambda: build(src, **params))

        return run

    return wrap


def frozen(value: Any) -> Any:
    """``value`` (parameters: mappings, sequences, scalars) as a hashable key part."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(frozen(v) for v in value)
    return value


def bridged_subscriptions(src: Sources, *, grace_days: int = 7) -> ir.Table:
    """Subscription rows plus *bridge* rows that close gaps of at most ``grace_days``.

    A bridge row runs from the moment a customer's rows all stopped to the start of the next
    row, with the MRR (and currency, plan) of the rows that stopped at that moment.
    Columns: customer_id, plan, mrr_minor, currency, started_at, ended_at (FAR_FUTURE = open),
    n_rows (the customer's rows here: with one, per-customer sums need no grouping).
    """
    return shared_table(src, ("bridged", grace_days), lambda: _bridged(src, grace_days))


def _bridged(src: Sources, grace_days: int) -> ir.Table:
    s = src.subscriptions
    s = s.select(
        "customer_id",
        "plan",
        "mrr_minor",
        "currency",
        started_at=s.started_at.cast("timestamp"),
        ended_at=s.ended_at.cast("timestamp").fill_null(_far()),
    )
    if grace_days <= 0:
        return _with_row_count(s)
    w = ibis.window(group_by=s.customer_id, order_by=[s.started_at, s.ended_at], rows=(None, -1))
    gaps = s.mutate(prev_end=s.ended_at.max().over(w))
    gaps = gaps.filter(
        gaps.prev_end.notnull(),
        gaps.started_at > gaps.prev_end,
        gaps.started_at <= gaps.prev_end + ibis.interval(days=grace_days),
    ).select(customer_id="customer_id", gap_start="prev_end", gap_end="started_at")
    ended = s.select(
        e_customer="customer_id",
        e_at="ended_at",
        plan="plan",
        mrr_minor="mrr_minor",
        currency="currency",
    )
    bridges = gaps.join(
        ended, (gaps.customer_id == ended.e_customer) & (gaps.gap_start == ended.e_at)
    ).select(
        customer_id=gaps.customer_id,
        plan=ended.plan,
        mrr_minor=ended.mrr_minor,
        currency=ended.currency,
        started_at=gaps.gap_start.cast("timestamp"),
        ended_at=gaps.gap_end.cast("timestamp"),
    )
    return _with_row_count(s.union(bridges))


def _with_row_count(rows: ir.Table) -> ir.Table:
    return rows.mutate(n_rows=rows.count().over(ibis.window(group_by=rows.customer_id)))


def spells(src: Sources, *, grace_days: int = 7) -> ir.Table:
    """Maximal activity spells per customer.

    Columns: customer_id, spell_no (1 = first), started_at, ended_at (FAR_FUTURE = ongoing),
    first_started_at (the customer's first-ever start), n_spells (the customer's spells).
    """
    return shared_table(src, ("spells", grace_days), lambda: _spells(src, grace_days))


def _spells(src: Sources, grace_days: int) -> ir.Table:
    rows = bridged_subscriptions(src, grace_days=grace_days)
    w = ibis.window(
        group_by=rows.customer_id, order_by=[rows.started_at, rows.ended_at], rows=(None, -1)
    )
    rows = rows.mutate(prev_end=rows.ended_at.max().over(w))
    rows = rows.mutate(
        starts_spell=ibis.ifelse(rows.prev_end.isnull() | (rows.started_at > rows.prev_end), 1, 0)
    )
    cw = ibis.window(
        group_by=rows.customer_id, order_by=[rows.started_at, rows.ended_at], rows=(None, 0)
    )
    rows = rows.mutate(spell_no=rows.starts_spell.sum().over(cw))
    out = rows.group_by(["customer_id", "spell_no"]).aggregate(
        started_at=rows.started_at.min(), ended_at=rows.ended_at.max()
    )
    first = out.group_by("customer_id").aggregate(
        first_started_at=out.started_at.min(), n_spells=out.count().cast("int64")
    )
    return out.join(first, "customer_id")
