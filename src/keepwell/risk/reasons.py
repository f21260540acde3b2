"""Why is this customer at risk? Top drivers in a CSM's words, from SHAP contributions.

LightGBM's ``pred_contrib=True`` gives each feature's contribution to a customer's log-odds of
churning (SHAP values: they add up to the model's raw score). Related features are summed into
one **driver** (every usage-trend column is "usage", ``last_nps_score`` and
``days_since_last_nps`` are "nps", ...). A driver becomes a reason when its contribution is
positive (it pushes risk *up*) and the customer's values can be said as a risk; the text
quotes those values:

========== ======================================================================
driver     example text (W = the feature window, 28 days)
========== ======================================================================
usage      "active days fell 60% vs the previous 28 days (4 vs 10)";
           "no active days in the last 28 days (3 in the previous 28)";
           "events fell 45% vs the previous 28 days (55 vs 100)";
           "active on only 2 of the last 28 days"; "not active in the last 56 days"
inactivity "no activity for 19 days" (days since the last active day, shown from 7);
           "no activity recorded yet"
payments   "2 failed payments in the last 90 days"
nps        "NPS 3 (detractor) 12 days ago", "NPS 7 (passive) 40 days ago";
           "never answered an NPS survey"
adoption   "only 2 of 10 features used in the last 28 days"
           (event types used; shown when some but at most half are)
support    "3 support tickets in the last 28 days"
tenure     "customer for only 45 days" (under 90 days)
value      "small account ($29.00 MRR)"
segment    "industry travel: more churn in this segment"
========== ======================================================================

Reasons are ordered by contribution, strongest first.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from keepwell.money import format_money
from keepwell.risk.dataset import MISSING_CATEGORY
from keepwell.risk.model import GradientBoostingRiskModel

__all__ = ["Reason", "drivers_of", "explain", "reason_text"]

INACTIVE_FROM_DAYS = 7
NEW_CUSTOMER_DAYS = 90
LOW_ACTIVE_SHARE = 0.25


@dataclass(frozen=True)
class Reason:
    """One driver of a customer's risk.

    Attributes:
        driver: the group of features (usage, inactivity, payments, nps, ...).
        feature: the group's feature with the largest contribution.
        text: the sentence a CSM reads, with the customer's values.
        contribution: the group's summed SHAP value (log-odds; > 0 raises risk).
    """

    driver: str
    feature: str
    text: str
    contribution: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class _Row:
    """Feature values of one customer, looked up by column name."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: dict[str, np.ndarray], i: int) -> None:
        self._columns = columns
        self._i = i

    def get(self, name: str) -> float | str | None:
        col = self._columns.get(name)
        if col is None:
            return None
        value = col[self._i]
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    def num(self, name: str) -> float | None:
        value = self.get(name)
        return None if value is None else float(value)


def _n(value: float) -> int:
    return round(value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _usage(row: _Row, w: int, ctx: dict) -> str | None:
    cur, prev = row.num(f"active_days_{w}"), row.num(f"active_days_prev_{w}")
    ev, ev_prev = row.num(f"events_{w}"), row.num(f"events_prev_{w}")
    if cur == 0 and prev:
        return f"no active days in the last {w} days ({_n(prev)} in the previous {w})"
    if cur is not None and prev and cur < prev:
        fall = _n(100 * (prev - cur) / prev)
        return f"active days fell {fall}% vs the previous {w} days ({_n(cur)} vs {_n(prev)})"
    if ev is not None and ev_prev and ev < ev_prev:
        fall = _n(100 * (ev_prev - ev) / ev_prev)
        return f"events fell {fall}% vs the previous {w} days ({_n(ev)} vs {_n(ev_prev)})"
    if cur == 0 and not prev:
        return f"not active in the last {2 * w} days"
    if cur is not None and cur <= LOW_ACTIVE_SHARE * w:
        return f"active on only {_n(cur)} of the last {w} days"
    return None


def _inactivity(row: _Row, w: int, ctx: dict) -> str | None:
    days = row.num("days_since_last_event")
    if days is None:
        return "no activity recorded yet"
    if days >= INACTIVE_FROM_DAYS:
        return f"no activity for {_n(days)} days"
    return None


def _payments(row: _Row, w: int, ctx: dict) -> str | None:
    failed = row.num("failed_invoices_90")
    if failed:
        return f"{_plural(_n(failed), 'failed payment')} in the last 90 days"
    return None


def _nps(row: _Row, w: int, ctx: dict) -> str | None:
    score, ago = row.num("last_nps_score"), row.num("days_since_last_nps")
    if score is None:
        return "never answered an NPS survey"
    when = "" if ago is None else f" {_plural(_n(ago), 'day')} ago"
    if score <= 6:
        return f"NPS {_n(score)} (detractor){when}"
    if score <= 8:
        return f"NPS {_n(score)} (passive){when}"
    return None


def _adoption(row: _Row, w: int, ctx: dict) -> str | None:
    used, total = row.num(f"features_used_{w}"), ctx.get("event_types", 0)
    if not used or not total or used > total / 2:
        return None  # no use at all is a usage reason, not an adoption one
    return f"only {_n(used)} of {total} features used in the last {w} days"


def _support(row: _Row, w: int, ctx: dict) -> str | None:
    tickets = row.num(f"tickets_{w}")
    if tickets:
        return f"{_plural(_n(tickets), 'support ticket')} in the last {w} days"
    return None


def _tenure(row: _Row, w: int, ctx: dict) -> str | None:
    days = row.num("tenure_days")
    if days is not None and days < NEW_CUSTOMER_DAYS:
        return f"customer for only {_plural(_n(days), 'day')}"
    return None


@functools.lru_cache(maxsize=4096)
def _money(amount_minor: int, currency: str | None) -> str:
    """Display money (cached: plan prices repeat across customers, Babel is slow)."""
    return format_money(amount_minor, currency) if currency else f"{amount_minor / 100:,.2f}"


def _value(row: _Row, w: int, ctx: dict) -> str | None:
    mrr = row.num("mrr_minor")
    if not mrr:
        return None
    return f"small account ({_money(_n(mrr), ctx.get('currency'))} MRR)"


Renderer = Callable[[_Row, int, dict], "str | None"]

RENDERERS: dict[str, Renderer] = {
    "usage": _usage,
    "inactivity": _inactivity,
    "payments": _payments,
    "nps": _nps,
    "adoption": _adoption,
    "support": _support,
    "tenure": _tenure,
    "value": _value,
}


def drivers_of(features: Sequence[str], *, window_days: int = 28) -> dict[str, list[str]]:
    """Group feature columns into drivers; categorical and unknown columns stand alone."""
    w = window_days
    fixed = {
        "usage": [
            f"active_days_{w}",
            f"active_days_prev_{w}",
            "active_days_ratio",
            "active_days_pct_change",
            f"events_{w}",
            f"events_prev_{w}",
            "events_ratio",
            "events_pct_change",
        ],
        "inactivity": ["days_since_last_event"],
        "payments": ["failed_invoices_90"],
        "nps": ["last_nps_score", "days_since_last_nps"],
        "support": [f"tickets_{w}"],
        "tenure": ["tenure_days", "customer_age_days"],
        "value": ["mrr_minor"],
    }
    owner = {f: d for d, fs in fixed.items() for f in fs}
    groups: dict[str, list[str]] = {}
    for f in features:
        if f in owner:
            driver = owner[f]
        elif f == f"features_used_{w}" or f.startswith(f"n{w}_"):
            driver = "adoption"
        else:
            driver = f
        groups.setdefault(driver, []).append(f)
    return groups


def _other(feature: str) -> Renderer:
    def render(row: _Row, w: int, ctx: dict) -> str | None:
        value = row.get(feature)
        if value is None or value == MISSING_CATEGORY:
            return None
        if isinstance(value, str):
            return f"{feature} {value}: more churn in this segment"
        return f"{feature} = {value:g}"

    return render


def reason_text(
    driver: str,
    values: dict[str, float | str | None],
    *,
    window_days: int = 28,
    event_types: int = 0,
    currency: str | None = None,
) -> str | None:
    """The sentence for one driver and one customer's feature values (None = not a risk).

    >>> reason_text("payments", {"failed_invoices_90": 2})
    '2 failed payments in the last 90 days'
    """
    columns = {k: np.array([np.nan if v is None else v], dtype=object) for k, v in values.items()}
    render = RENDERERS.get(driver) or _other(driver)
    ctx = {"event_types": event_types, "currency": currency}
    return render(_Row(columns, 0), window_days, ctx)


def explain(
    model: GradientBoostingRiskModel,
    X: pd.DataFrame,
    *,
    window_days: int = 28,
    top: int = 3,
    currency: Sequence[str | None] | None = None,
) -> list[list[Reason]]:
    """The top ``top`` reasons per row of ``X`` (features as the model was fitted on).

    ``currency`` (one per row) formats money in the text.
    """
    contrib = model.contributions(X)
    groups = drivers_of(model.features_, window_days=window_days)
    names = list(groups)
    sums = np.column_stack([contrib[groups[d]].to_numpy().sum(axis=1) for d in names])
    best_feature = [
        [groups[d][j] for j in contrib[groups[d]].to_numpy().argmax(axis=1)] for d in names
    ]
    columns = {c: X[c].to_numpy(dtype=object) for c in model.features_}
    total_types = sum(1 for f in model.features_ if f.startswith(f"n{window_days}_"))
    renderers = [RENDERERS.get(d) or _other(d) for d in names]
    order = np.argsort(-sums, axis=1, kind="stable")
    out: list[list[Reason]] = []
    for i in range(len(X)):
        row = _Row(columns, i)
        ctx = {"event_types": total_types, "currency": currency[i] if currency else None}
        reasons: list[Reason] = []
        for g in order[i]:
            value = sums[i, g]
            if value <= 0 or len(reasons) >= top:
                break
            text = renderers[g](row, window_days, ctx)
            if text is not None:
                reasons.append(Reason(names[g], best_feature[g][i], text, float(value)))
        out.append(reasons)
    return out
