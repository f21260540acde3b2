"""Report service: run registered metrics and shape their results for people and programs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd

from keepwell.errors import InvalidInput
from keepwell.metrics.registry import MetricSpec, all_metrics
from keepwell.metrics.sources import Sources


def catalogue() -> dict[str, MetricSpec]:
    """Every metric a report can show, by name."""
    return all_metrics()


def parse_filters(items: Sequence[str]) -> dict[str, list[str]]:
    """``["industry=travel,hospitality", "tag=vip"]`` -> ``{"industry": [...], "tag": ["vip"]}``."""
    filters: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(
                f"bad segment filter {item!r}", field="segment", expected="field=value[,value...]"
            )
        parsed = [v.strip() for v in values.split(",") if v.strip()]
        if not parsed:
            raise InvalidInput(
                f"bad segment filter {item!r}", field="segment", expected="field=value[,value...]"
            )
        filters.setdefault(name.strip(), []).extend(parsed)
    return filters


def run_metric(
    src: Sources,
    name: str,
    *,
    start: date | None = None,
    end: date | None = None,
    period: str | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    by: Sequence[str] = (),
    **extra: Any,
) -> pd.DataFrame:
    """Execute metric ``name`` on ``src`` and return its rows.

    Only the parameters the metric accepts are passed; asking for a breakdown or filter the
    metric does not support is an :class:`InvalidInput`.
    """
    metrics = catalogue()
    if name not in metrics:
        raise InvalidInput(f"unknown metric {name!r}", field="metric", expected=", ".join(metrics))
    spec = metrics[name]
    given = {"start": start, "end": end, "period": period, **extra}
    params = {k: v for k, v in given.items() if v is not None and k in spec.params}
    for key in ("filters", "by"):
        value = filters if key == "filters" else by
        if value:
            if key not in spec.params:
                what = "filtered" if key == "filters" else "broken down"
                raise InvalidInput(f"metric {name!r} cannot be {what}", field=key)
            params[key] = dict(value) if key == "filters" else list(value)
    unknown = set(extra) - spec.params
    if unknown:
        raise InvalidInput(
            f"metric {name!r} has no parameter(s) {sorted(unknown)}",
            expected=", ".join(sorted(spec.params)),
        )
    return src.con.execute(spec.builder(src, **params))


def to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: timestamps as ISO text, NaN/NaT as null."""
    return json.loads(df.to_json(orient="records", date_format="iso", date_unit="s"))


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``["margin=0.7", "as_of=2026-03-01", "grace_days=0"]`` -> typed keyword arguments."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"bad --param {item!r}", field="param", expected="name=value")
        raw = raw.strip()
        value: Any = raw
        for convert in (int, float, date.fromisoformat):
            try:
                value = convert(raw)
                break
            except ValueError:
                continue
        params[key.strip()] = value
    return params
