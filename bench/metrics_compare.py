"""Reduce each implementation's result to a common shape and compare two of them.

A difference is reported, never hidden: rows only on one side, and per value column how many
rows differ with the first few examples (integers and flags must be equal; floats within a
relative 1e-9). Two conventions make the shapes comparable:

* ``event_retention``: cells with ``returned == 0`` are dropped on both sides (keepwell lists
  the whole triangle with zeros, a query lists the cells that have returns);
* ``features``: the comparison covers keepwell's customers (those active by subscription at
  ``as_of``); a customer missing from the other result had no events there, so its counts are
  0 and its days since the last event null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from metrics_plan import Plan, Shape, shapes

RTOL = 1e-9
EXAMPLES = 3


@dataclass(frozen=True)
class Check:
    """The outcome of comparing one metric of two implementations."""

    metric: str
    against: str
    ok: bool
    rows: int
    detail: str

    def line(self) -> str:
        status = "OK" if self.ok else "MISMATCH"
        return f"{self.metric:18s} keepwell vs {self.against:7s} {status:8s} {self.detail}"


def canonical(name: str, df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """``df`` reduced to the compared columns of ``name``, sorted by its keys."""
    shape = shapes(plan)[name]
    missing = [c for c in (*shape.keys, *shape.values) if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: result lacks columns {missing}")
    out = df[list(shape.keys) + list(shape.values)].copy()
    if name == "event_retention":
        out = out[out["returned"] > 0]
    for key in shape.keys:
        out[key] = out[key].map(_key)
    for col in shape.values:
        out[col] = _numeric(out[col])
    return out.sort_values(list(shape.keys)).reset_index(drop=True)


def _key(value: object) -> object:
    if isinstance(value, np.integer | int):
        return int(value)
    return str(value)


def _numeric(s: pd.Series) -> pd.Series:
    """As float64 (bools as 0/1, null as NaN)."""
    if s.dtype == object:
        s = s.map(lambda v: np.nan if v is None or v is pd.NA else v)
    return pd.to_numeric(s, errors="coerce").astype("float64")


def compare(
    name: str, keepwell: pd.DataFrame, other: pd.DataFrame, plan: Plan, *, against: str
) -> Check:
    """Compare ``other`` (raw SQL or pandas) with keepwell's result for metric ``name``."""
    shape = shapes(plan)[name]
    kw = canonical(name, keepwell, plan)
    ot = canonical(name, other, plan)
    if name == "features":
        ot = kw[list(shape.keys)].merge(ot, on=list(shape.keys), how="left")
        counts = [c for c in shape.values if c != "days_since_last_event"]
        ot[counts] = ot[counts].fillna(0.0)
    return _diff(name, kw, ot, shape, against=against)


def _diff(name: str, kw: pd.DataFrame, ot: pd.DataFrame, shape: Shape, *, against: str) -> Check:
    keys = list(shape.keys)
    both = kw.merge(ot, on=keys, how="outer", suffixes=("_kw", "_ot"), indicator=True)
    problems = []
    only_kw = both[both["_merge"] == "left_only"]
    only_ot = both[both["_merge"] == "right_only"]
    if len(only_kw):
        problems.append(f"{len(only_kw)} rows only in keepwell (e.g. {_keys(only_kw, keys)})")
    if len(only_ot):
        problems.append(f"{len(only_ot)} rows only in {against} (e.g. {_keys(only_ot, keys)})")
    matched = both[both["_merge"] == "both"]
    for col in shape.values:
        a, b = matched[f"{col}_kw"].to_numpy(), matched[f"{col}_ot"].to_numpy()
        if col in shape.exact:
            same = (a == b) | (np.isnan(a) & np.isnan(b))
        else:
            same = np.isclose(a, b, rtol=RTOL, atol=0.0, equal_nan=True)
        bad = matched[~same]
        if len(bad):
            examples = "; ".join(
                f"{_keys(bad.iloc[[i]], keys)}: keepwell {_fmt(row[f'{col}_kw'])}, "
                f"{against} {_fmt(row[f'{col}_ot'])}"
                for i, (_, row) in enumerate(bad.head(EXAMPLES).iterrows())
            )
            problems.append(f"{col} differs in {len(bad)} of {len(matched)} rows ({examples})")
    detail = "; ".join(problems) if problems else f"{len(kw)} rows equal"
    return Check(name, against, not problems, len(kw), detail)


def _keys(df: pd.DataFrame, keys: list[str]) -> str:
    row = df.iloc[0]
    return ", ".join(f"{k}={row[k]}" for k in keys)


def _fmt(value: float) -> str:
    if np.isnan(value):
        return "null"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.10g}"
