"""The Kaplan-Meier retention chart: one step curve per segment with its confidence band."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MultipleLocator, PercentFormatter

from keepwell.survival.service import KMResult

__all__ = ["km_chart"]

COLOURS = plt.get_cmap("tab10").colors


def km_chart(result: KMResult, *, max_segments: int = 10) -> Figure:
    """Share of customers still retained (y, %) against months since their first paid start
    (x), per segment, with shaded (1 - alpha) confidence bands. The legend gives each
    segment's size and median lifetime; the largest ``max_segments`` segments are drawn."""
    summary = result.summary.sort_values(["customers", "segment"], ascending=[False, True])
    shown = summary.head(max_segments)
    fig, ax = plt.subplots(figsize=(10, 5.6), dpi=110, layout="constrained")
    by = f" by {result.by}" if result.by else ""
    ax.set_title(
        f"Customer retention{by} (Kaplan-Meier, {100 * (1 - result.alpha):.0f}% bands)",
        loc="left",
        fontsize=12,
        fontweight="bold",
    )
    for i, row in enumerate(shown.sort_values("segment").itertuples()):
        c = result.curves[result.curves["segment"] == row.segment]
        colour = COLOURS[i % len(COLOURS)]
        median = (
            "median not reached"
            if row.median_months is None or row.median_months != row.median_months
            else f"median {row.median_months:.1f} mo"
        )
        label = f"{row.segment} (n={row.customers}, {median})"
        ax.step(c["months"], c["survival"], where="post", color=colour, linewidth=1.8, label=label)
        ax.fill_between(
            c["months"], c["lower"], c["upper"], step="post", color=colour, alpha=0.12, linewidth=0
        )
    ax.set_xlabel("months since first paid start")
    ax.set_ylabel("customers still retained")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_locator(MultipleLocator(3))
    ax.axhline(0.5, color="#9e9e9e", linewidth=0.8, linestyle="--")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(color="#e0e0e0", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.legend(loc="lower left", fontsize=8, frameon=False, ncols=2 if len(shown) > 5 else 1)
    if result.logrank is not None:
        lr = result.logrank
        ax.text(
            0.99,
            0.98,
            f"log-rank chi2 = {lr['statistic']:.1f}, df = {lr['degrees_of_freedom']}, "
            f"p = {lr['p_value']:.2g}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=9,
            color="#424242",
        )
    if len(summary) > len(shown):
        ax.text(
            0.99,
            0.92,
            f"{len(summary) - len(shown)} smaller segments not drawn",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color="#757575",
        )
    return fig
