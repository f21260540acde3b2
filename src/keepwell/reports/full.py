"""The full retention report: every headline metric, charts and tables in one document.

:func:`build_report` runs the metrics once and returns a :class:`FullReport`; :mod:`.html`
renders it as one standalone HTML file and :func:`FullReport.write_pngs` writes the charts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from keepwell.metrics.sources import Sources
from keepwell.money import format_money
from keepwell.reports import charts
from keepwell.reports.service import run_metric

Progress = Callable[[str, int, int], None]


@dataclass
class Section:
    """One part of the report: a question, the answer as charts and tables."""

    key: str
    title: str
    intro: str
    charts: list[tuple[str, bytes]] = field(default_factory=list)  # (file stem, PNG)
    tables: list[tuple[str, str, pd.DataFrame]] = field(
        default_factory=list
    )  # (caption, metric, rows)


@dataclass
class Kpi:
    """A headline figure for the latest period."""

    label: str
    value: str
    note: str = ""


@dataclass
class FullReport:
    """Everything `keepwell report all` shows."""

    start: date
    end: date
    period: str
    timezone: str
    kpis: list[Kpi] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def write_pngs(self, directory: Path) -> list[Path]:
        """Write every chart as ``<section>-<chart>.png`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for section in self.sections:
            for stem, data in section.charts:
                path = directory / f"{section.key}-{stem}.png"
                path.write_bytes(data)
                written.append(path)
        return written


def _pct(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.1%}"


def _last(df: pd.DataFrame) -> pd.Series | None:
    return df.iloc[-1] if len(df) else None


def _main_currency(mrr: pd.DataFrame) -> str | None:
    if mrr.empty:
        return None
    return str(mrr.groupby("currency")["mrr_end"].sum().idxmax())


def build_report(
    src: Sources,
    *,
    start: date,
    end: date,
    period: str = "month",
    segment: str = "industry",
    progress: Progress | None = None,
) -> FullReport:
    """Run the report's metrics on ``src`` for [start, end) and assemble charts and tables."""
    steps = [
        "churn", "mrr", "nrr", "ltv", "cohorts", "retention_curve", "event_retention",
        "active_customers", "usage_frequency", "feature_adoption", "lifecycle", "churn_by_tenure",
    ]  # fmt: skip
    results: dict[str, pd.DataFrame] = {}
    common = {"start": start, "end": end, "period": period}
    for i, name in enumerate(steps):
        if progress:
            progress("report", i, len(steps))
        if name == "usage_frequency":
            results[name] = run_metric(src, name, **common, by=[segment])
        elif name == "event_retention":
            results[name] = run_metric(src, name, **common)
        else:
            results[name] = run_metric(src, name, **common)
    if progress:
        progress("report", len(steps), len(steps))

    report = FullReport(start=start, end=end, period=period, timezone=src.timezone)
    churn, mrr_all = results["churn"], results["mrr"]
    currency = _main_currency(mrr_all)
    mrr = mrr_all[mrr_all["currency"] == currency].reset_index(drop=True) if currency else mrr_all
    nrr = results["nrr"]
    nrr = nrr[nrr["currency"] == currency] if currency else nrr
    ltv = results["ltv"]
    ltv = ltv[ltv["currency"] == currency] if currency else ltv

    last = _last(churn)
    if last is not None:
        report.kpis += [
            Kpi("customers", f"{int(last.customers_end):,}", f"at the end of {last.period}"),
            Kpi("customer churn", _pct(last.churn_rate), f"start cohort, {last.period}"),
            Kpi("total churn", _pct(last.total_churn_rate), "incl. the period's new customers"),
        ]
    m = _last(mrr)
    if m is not None and currency:
        report.kpis += [
            Kpi("MRR", format_money(int(m.mrr_end), currency), f"end of {m.period}"),
            Kpi("net new MRR", format_money(int(m.net_new_mrr), currency), str(m.period)),
            Kpi("ARPA", format_money(round(m.arpa or 0), currency), "MRR per paying customer"),
        ]
    n = _last(nrr)
    if n is not None:
        report.kpis += [
            Kpi("NRR", _pct(n.nrr), str(n.period)),
            Kpi("GRR", _pct(n.grr), str(n.period)),
        ]
    lv = _last(ltv)
    if lv is not None and currency and pd.notna(lv.ltv):
        report.kpis.append(
            Kpi(
                "LTV",
                format_money(round(lv.ltv), currency),
                f"ARPA x {lv.margin:.0%} margin / {lv.churn_window_months}-month avg churn",
            )
        )
    ac = _last(results["active_customers"])
    if ac is not None:
        report.kpis.append(Kpi("stickiness", _pct(ac.stickiness), f"DAU / MAU, {ac.period}"))

    s = Section(
        "churn",
        "Churn and retention",
        "Start-cohort churn = customers active at the start of a period and gone at its end, "
        "divided by customers at the start. Total churn also counts the period's new and "
        "returning customers who left before it ended.",
    )
    if len(churn):
        s.charts.append(("rates", charts.png(charts.churn_rates(churn))))
    s.tables.append(("Customers and churn per period", "churn", churn))
    report.sections.append(s)

    s = Section(
        "revenue",
        "Revenue: MRR and its movements",
        "Movements compare each customer's MRR at the start and the end of a period: new, "
        "reactivation, expansion, contraction and churned MRR add up to the net new MRR.",
    )
    if len(mrr):
        s.charts.append(("mrr", charts.png(charts.mrr_level(mrr))))
        s.charts.append(("movements", charts.png(charts.mrr_movements(mrr))))
    s.tables.append(("MRR movements", "mrr", mrr))
    s.tables.append(("Net and gross revenue retention", "nrr", nrr))
    s.tables.append(("Lifetime value", "ltv", ltv))
    report.sections.append(s)

    cohorts = results["cohorts"]
    s = Section(
        "cohorts",
        "Cohorts: who stays",
        "Customers grouped by the period of their first payment; each cell is the share of the "
        "cohort still paying that many periods after their own start. The curve averages all "
        "cohorts, weighted by size.",
    )
    if len(cohorts):
        s.charts.append(("heatmap", charts.png(charts.cohort_heatmap(cohorts))))
    if len(results["retention_curve"]):
        s.charts.append(
            (
                "curve",
                charts.png(
                    charts.retention_curves(results["retention_curve"], results["event_retention"])
                ),
            )
        )
    s.tables.append(("Retention curve", "retention_curve", results["retention_curve"]))
    report.sections.append(s)

    s = Section(
        "engagement",
        "Engagement: how customers use the product",
        "Stickiness is average daily active customers over monthly active customers. The "
        "frequency spectrum sorts customers by active days in the last 28 days; a segment whose "
        "median customer uses the product less than once a month is in the forgotten zone.",
    )
    if len(results["active_customers"]):
        s.charts.append(
            ("active", charts.png(charts.active_customers(results["active_customers"])))
        )
    uf = results["usage_frequency"]
    if len(uf):
        latest = uf[uf["period"] == uf["period"].max()]
        s.charts.append(
            ("spectrum", charts.png(charts.frequency_spectrum(latest, segment=segment)))
        )
        s.tables.append(
            (f"Usage frequency by {segment}, {latest['period'].iloc[0]}", "usage_frequency", latest)
        )
    fa = results["feature_adoption"]
    if len(fa):
        s.charts.append(
            (
                "adoption",
                charts.png(charts.feature_adoption(fa[fa["period"] == fa["period"].max()])),
            )
        )
    if len(results["lifecycle"]):
        s.charts.append(("lifecycle", charts.png(charts.lifecycle(results["lifecycle"]))))
    s.tables.append(("Lifecycle", "lifecycle", results["lifecycle"]))
    report.sections.append(s)

    cbt = results["churn_by_tenure"]
    s = Section(
        "where",
        "Where customers leave",
        "Customers who churned in the range, by how long they had been customers. The label is "
        "the churn rate of the bucket: churned / customers who reached that tenure.",
    )
    if len(cbt):
        s.charts.append(("tenure", charts.png(charts.churn_by_tenure(cbt))))
    report.sections.append(s)
    return report
