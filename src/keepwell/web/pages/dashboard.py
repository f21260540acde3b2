"""The dashboard ``/``: headline retention figures and charts for a chosen range.

Figures come from :mod:`keepwell.reports.background`: a visit after nothing changed reads
stored results (no event scan, no chart rendering). After a data change the figures are
recomputed in the background (the server's warmer usually has done it already); a visit waits
for that at most ``dashboard_wait_seconds``, then shows the previous figures marked with the
time they were computed, or a notice that refreshes the page until they are ready.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from keepwell.reports import background
from keepwell.reports import cache as metrics_cache
from keepwell.web.auth import DbSession, PageUser
from keepwell.web.pages import queries
from keepwell.web.pages.common import DASH, engine_of, money, pct, render

router = APIRouter()

RANGES = (3, 6, 12, 24)
REFRESH_SECONDS = 5
"""While figures are being computed, the page reloads itself this often."""
CHART_TITLES = {
    "cohort_heatmap": "Cohort retention",
    "retention_curve": "Retention curve",
    "mrr_movements": "MRR movements",
    "frequency_spectrum": "Usage frequency by industry",
}


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: str
    note: str = ""


def _last(df: pd.DataFrame) -> pd.Series | None:
    return df.iloc[-1] if len(df) else None


def _num(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return float(value)


def kpis(figures: metrics_cache.DashboardFigures, risk: queries.RiskSummary | None) -> list[Kpi]:
    """The headline figures of the range's last period."""
    out: list[Kpi] = []
    currency = figures.currency
    c = _last(figures.frames["churn"])
    if c is not None:
        out += [
            Kpi("customers", "Customers", f"{int(c.customers_end):,}", f"end of {c.period}"),
            Kpi("churn", "Customer churn", pct(_num(c.churn_rate)), f"start cohort, {c.period}"),
            Kpi("retention", "Customer retention", pct(_num(c.retention_rate)), str(c.period)),
        ]
    m = _last(figures.frames["mrr"])
    if m is not None and currency:
        out += [
            Kpi("mrr", "MRR", money(int(m.mrr_end), currency), f"end of {m.period}"),
            Kpi(
                "net_new_mrr",
                "Net new MRR",
                money(int(m.net_new_mrr), currency),
                " · ".join(
                    f"{what} {money(int(m[what]), currency)}"
                    for what in ("new", "expansion", "contraction", "churned")
                ),
            ),
        ]
    n = _last(figures.frames["nrr"])
    if n is not None:
        out.append(Kpi("nrr", "NRR", pct(_num(n.nrr)), f"GRR {pct(_num(n.grr))}, {n.period}"))
    a = _last(figures.frames["active_customers"])
    if a is not None:
        out.append(Kpi("stickiness", "Stickiness", pct(_num(a.stickiness)), f"DAU/MAU, {a.period}"))
    if risk is None:
        out.append(Kpi("at_risk", "At-risk customers", DASH, "not scored yet: keepwell risk score"))
    else:
        note = f"high band, scored as of {risk.as_of:%Y-%m-%d}"
        out.append(Kpi("at_risk", "At-risk customers", f"{risk.at_risk:,}", note))
        for cur, amount in sorted(risk.revenue_at_risk_minor.items()):
            out.append(
                Kpi("revenue_at_risk", "Revenue at risk", money(amount, cur), "probability x value")
            )
    return out


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request,
    who: PageUser,
    db_session: DbSession,
    months: Annotated[int, Query(ge=1, le=120)] = 12,
    period: Literal["week", "month", "quarter"] = "month",
) -> HTMLResponse:
    settings = request.app.state.settings
    start, end = metrics_cache.dashboard_range(months)
    view = background.dashboard_view(
        settings,
        engine_of(request),
        start=start,
        end=end,
        period=period,
        wait=settings.dashboard_wait_seconds,
    )
    figures = view.figures
    charts = [
        (CHART_TITLES[name], base64.b64encode(data).decode())
        for name, data in (figures.charts.items() if figures else ())
    ]
    risk = queries.risk_summary(db_session=db_session)
    return render(
        request,
        who,
        "pages/dashboard.html",
        months=months,
        period=period,
        ranges=RANGES,
        start=start,
        end=end,
        state=view.state,
        error=view.error,
        computed_at=figures.computed_at if figures else None,
        refresh_seconds=REFRESH_SECONDS,
        kpis=kpis(figures, risk) if figures else [],
        charts=charts,
    )
