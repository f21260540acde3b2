"""The catalogue of metrics: name -> builder, for the report CLI, the HTML report and tests.

A metric module registers its public builders with :func:`metric`; :func:`all_metrics` imports
every metric module once and returns the catalogue. A builder takes ``(src, **params)`` and
returns a lazy ``ibis.Table``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import ibis.expr.types as ir

MODULES = (
    "keepwell.metrics.churn",
    "keepwell.metrics.revenue",
    "keepwell.metrics.cohorts",
    "keepwell.metrics.engagement",
    "keepwell.metrics.event_retention",
    "keepwell.metrics.features",
)

Builder = Callable[..., ir.Table]

TITLES = {
    "churn": "Customer churn and retention",
    "mrr": "MRR and its movements",
    "nrr": "Net and gross revenue retention",
    "ltv": "Customer lifetime value",
    "cost_of_churn": "Cost of churn",
    "repeat_revenue": "Repeat-customer revenue share",
    "cohorts": "Cohort retention (logo and revenue)",
    "retention_curve": "Retention curve",
    "active_customers": "Active customers (DAU / WAU / MAU) and stickiness",
    "usage_frequency": "Usage frequency spectrum per segment",
    "feature_adoption": "Feature adoption per event type",
    "lifecycle": "Lifecycle: new, returning, resurrecting, dormant",
    "churn_by_tenure": "Churn by tenure and lifecycle stage",
    "event_retention": "Event retention (start event -> return event)",
    "features": "Per-customer behavioural features",
}
"""Names and titles of the catalogue, known without importing the metric modules (fast CLI
start-up); a test checks they match what the modules register."""


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: what it is called, what it means, what it reads and accepts."""

    name: str
    builder: Builder
    title: str
    needs: frozenset[str]  # Sources tables it reads, e.g. {"subscriptions"}
    params: frozenset[str]  # keyword parameters it accepts, e.g. {"start", "end", "period"}


_REGISTRY: dict[str, MetricSpec] = {}


def metric(
    name: str, *, title: str, needs: set[str], params: set[str]
) -> Callable[[Builder], Builder]:
    """Register a builder under ``name`` (decorator)."""

    def register(builder: Builder) -> Builder:
        _REGISTRY[name] = MetricSpec(name, builder, title, frozenset(needs), frozenset(params))
        return builder

    return register


def all_metrics() -> dict[str, MetricSpec]:
    """Every registered metric in catalogue (``TITLES``) order, whatever the import order."""
    for module in MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    order = {name: i for i, name in enumerate(TITLES)}
    return dict(sorted(_REGISTRY.items(), key=lambda kv: order.get(kv[0], len(order))))
