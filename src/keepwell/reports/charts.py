"""Charts for the retention report (matplotlib, rendered to PNG without a display).

Each function takes a metric's result frame and returns a :class:`matplotlib.figure.Figure`;
:func:`png` turns a figure into PNG bytes. Charts are meant to be read by a person: titles say
what is shown, axes carry units, percentages are percentages, money is in major units.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from keepwell.money import decimals

PALETTE = {
    "new": "#2e7d32",
    "reactivation": "#26a69a",
    "expansion": "#81c784",
    "contraction": "#ef9a9a",
    "churned": "#c62828",
    "line": "#1565c0",
    "line2": "#ef6c00",
    "muted": "#90a4ae",
}
SPECTRUM = {
    "daily": "#1b5e20",
    "weekly": "#66bb6a",
    "monthly": "#ffb74d",
    "less_than_monthly": "#e53935",
}


def _figure(title: str, *, width: float = 9.0, height: float = 4.2) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height), dpi=110, layout="constrained")
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _thin_labels(ax: plt.Axes, labels: list[str], *, max_labels: int = 14) -> None:
    step = max(1, int(np.ceil(len(labels) / max_labels)))
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(
        [lab if i % step == 0 else "" for i, lab in enumerate(labels)],
        rotation=45,
        ha="right",
        fontsize=8,
    )


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (and closes it)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _major(values: pd.Series, currency: str) -> pd.Series:
    return values.astype("float64") / (10 ** decimals(currency))


def churn_rates(df: pd.DataFrame) -> Figure:
    """Start-cohort and total churn rate per period (line chart, percent)."""
    fig, ax = _figure("Customer churn rate per period")
    x = range(len(df))
    ax.plot(x, df["churn_rate"], marker="o", color=PALETTE["line"], label="start-cohort churn")
    ax.plot(
        x,
        df["total_churn_rate"],
        marker="s",
        color=PALETTE["line2"],
        label="total churn (incl. the period's new customers)",
    )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("churned / customers at start")
    _thin_labels(ax, list(df["period"]))
    ax.legend(frameon=False, fontsize=9, loc="upper left")
    return fig


def mrr_movements(df: pd.DataFrame) -> Figure:
    """MRR movements per period as diverging stacked bars, with net new MRR as a line."""
    currency = str(df["currency"].iloc[0])
    fig, ax = _figure(f"MRR movements per period ({currency})")
    x = np.arange(len(df))
    up = np.zeros(len(df))
    for col in ("new", "reactivation", "expansion"):
        vals = _major(df[col], currency).to_numpy()
        ax.bar(x, vals, bottom=up, color=PALETTE[col], label=col, width=0.7)
        up += vals
    down = np.zeros(len(df))
    for col in ("contraction", "churned"):
        vals = -_major(df[col], currency).to_numpy()
        ax.bar(x, vals, bottom=down, color=PALETTE[col], label=col, width=0.7)
        down += vals
    ax.plot(
        x,
        _major(df["net_new_mrr"], currency),
        color="#212121",
        marker="o",
        linewidth=1.5,
        label="net new MRR",
    )
    ax.axhline(0, color="#616161", linewidth=0.8)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(f"MRR change ({currency} per month)")
    _thin_labels(ax, list(df["period"]))
    ax.legend(frameon=False, fontsize=8, ncols=6, loc="upper left", bbox_to_anchor=(0, -0.22))
    return fig


def mrr_level(df: pd.DataFrame) -> Figure:
    """MRR at the end of each period (area)."""
    currency = str(df["currency"].iloc[0])
    fig, ax = _figure(f"MRR at the end of each period ({currency})", height=3.4)
    x = range(len(df))
    vals = _major(df["mrr_end"], currency)
    ax.fill_between(x, vals, color="#bbdefb")
    ax.plot(x, vals, color=PALETTE["line"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylim(bottom=0)
    _thin_labels(ax, list(df["period"]))
    return fig


def cohort_heatmap(df: pd.DataFrame, *, value: str = "logo_retention") -> Figure:
    """Cohort x age heatmap of retention (each cell: share of the cohort still a customer)."""
    table = df.pivot_table(index="cohort", columns="age", values=value, aggfunc="first")
    table = table.sort_index()
    what = "customers" if value == "logo_retention" else "MRR"
    height = max(3.0, 0.32 * len(table) + 1.6)
    fig, ax = _figure(f"Cohort retention of {what} by months since first payment", height=height)
    ax.grid(False)
    data = table.to_numpy(dtype="float64")
    image = ax.imshow(
        np.ma.masked_invalid(data),
        cmap="YlGn",
        vmin=0,
        vmax=max(1.0, np.nanmax(data) if data.size else 1),
        aspect="auto",
    )
    for (i, j), v in np.ndenumerate(data):
        if not np.isnan(v):
            ax.text(
                j,
                i,
                f"{v:.0%}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v > 0.65 else "#212121",
            )
    ax.set_yticks(range(len(table.index)))
    ax.set_yticklabels(table.index, fontsize=8)
    ax.set_xticks(range(len(table.columns)))
    ax.set_xticklabels([str(c) for c in table.columns], fontsize=8)
    ax.set_xlabel("age (periods since the cohort's first payment)")
    ax.set_ylabel("cohort")
    fig.colorbar(image, ax=ax, format=PercentFormatter(1.0, decimals=0), shrink=0.8)
    return fig


def retention_curves(curve: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Cohort-weighted customer retention by age, and event retention if given."""
    fig, ax = _figure("Retention curve")
    ax.plot(
        curve["age"],
        curve["retention"],
        marker="o",
        color=PALETTE["line"],
        label="customers still paying",
    )
    if events is not None and len(events):
        ev = events.groupby("period_offset").agg(r=("returned", "sum"), n=("cohort_size", "sum"))
        ev = ev[ev["n"] > 0]
        ax.plot(
            ev.index,
            ev["r"] / ev["n"],
            marker="s",
            color=PALETTE["line2"],
            label="customers returning to the product (event retention)",
        )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("periods since start")
    ax.set_ylabel("share of cohort")
    ax.legend(frameon=False, fontsize=9)
    return fig


def frequency_spectrum(df: pd.DataFrame, *, segment: str) -> Figure:
    """Share of each segment's customers by usage frequency; forgotten-zone segments marked."""
    df = df.sort_values("share_daily", ascending=True)
    height = max(3.0, 0.45 * len(df) + 1.5)
    fig, ax = _figure(f"How often customers use the product, by {segment}", height=height)
    ax.grid(axis="x", color="#e0e0e0")
    ax.grid(axis="y", visible=False)
    left = np.zeros(len(df))
    y = np.arange(len(df))
    for band, color in SPECTRUM.items():
        vals = df[f"share_{band}"].fillna(0).to_numpy()
        ax.barh(y, vals, left=left, color=color, label=band.replace("_", " "), height=0.7)
        left += vals
    labels = [
        f"{name}  ⚠ forgotten zone" if flag else str(name)
        for name, flag in zip(df[segment], df["forgotten_zone"], strict=True)
    ]
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=9)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of active customers (last 28 days as of the period end)")
    ax.legend(
        frameon=False,
        fontsize=8,
        ncols=4,
        loc="upper left",
        bbox_to_anchor=(0, -0.12 - 0.6 / height),
    )
    return fig


def lifecycle(df: pd.DataFrame) -> Figure:
    """New, returning and resurrecting customers up; dormant down (PostHog-style lifecycle)."""
    fig, ax = _figure("Usage lifecycle per period")
    x = np.arange(len(df))
    bottom = np.zeros(len(df))
    colors = {"returning": "#1565c0", "new": "#2e7d32", "resurrecting": "#8e24aa"}
    for col, color in colors.items():
        vals = df[col].astype("float64").to_numpy()
        ax.bar(x, vals, bottom=bottom, color=color, label=col, width=0.7)
        bottom += vals
    ax.bar(x, -df["dormant"].abs().astype("float64"), color="#bdbdbd", label="dormant", width=0.7)
    ax.axhline(0, color="#616161", linewidth=0.8)
    ax.set_ylabel("customers")
    _thin_labels(ax, list(df["period"]))
    ax.legend(frameon=False, fontsize=8, ncols=4, loc="upper left", bbox_to_anchor=(0, -0.22))
    return fig


def active_customers(df: pd.DataFrame) -> Figure:
    """Average DAU, WAU, MAU per period and stickiness (DAU/MAU) on a second axis."""
    fig, ax = _figure("Active customers and stickiness")
    x = range(len(df))
    for col, color in (("mau", "#90caf9"), ("wau", "#42a5f5"), ("dau", "#0d47a1")):
        ax.plot(x, df[col], color=color, marker="o", label=col.upper())
    ax.set_ylabel("active customers")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(
        x, df["stickiness"], color=PALETTE["line2"], linestyle="--", label="stickiness DAU/MAU"
    )
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax2.set_ylim(0, max(0.5, float(df["stickiness"].max() or 0) * 1.2))
    ax2.spines[["top"]].set_visible(False)
    _thin_labels(ax, list(df["period"]))
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(
        lines[0] + lines2[0],
        lines[1] + lines2[1],
        frameon=False,
        fontsize=8,
        ncols=4,
        loc="upper left",
        bbox_to_anchor=(0, -0.22),
    )
    return fig


def feature_adoption(df: pd.DataFrame) -> Figure:
    """Share of active customers using each feature (event type) in the latest period."""
    df = df.sort_values("adoption_rate")
    fig, ax = _figure(
        f"Feature adoption in {df['period'].iloc[-1] if len(df) else ''}",
        height=max(3.0, 0.35 * len(df) + 1.2),
    )
    ax.grid(axis="x", color="#e0e0e0")
    ax.grid(axis="y", visible=False)
    ax.barh(df["event"], df["adoption_rate"], color=PALETTE["line"])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of active customers who used it")
    return fig


def churn_by_tenure(df: pd.DataFrame) -> Figure:
    """Churned customers by tenure at churn, with the churn rate of each bucket."""
    t = (
        df[df["dimension"] == "tenure"]
        .groupby(["bucket_order", "bucket"], as_index=False)
        .agg(churned=("churned", "sum"), reached=("reached", "max"))
        .sort_values("bucket_order")
    )
    fig, ax = _figure("Where customers leave: churned customers by tenure at churn")
    ax.bar(t["bucket"], t["churned"], color=PALETTE["churned"])
    ax.set_ylabel("customers churned in the range")
    ax.set_ylim(0, max(1, float(t["churned"].max() or 0)) * 1.25)
    ax.set_xlabel("tenure at churn")
    for i, (c, r) in enumerate(zip(t["churned"], t["reached"], strict=True)):
        if r:
            ax.text(
                i, c, f"{c / r:.0%} of those\nreaching it", ha="center", va="bottom", fontsize=7
            )
    return fig
