"""The plain pandas suite: what an analyst writes for keepwell's event metrics.

Read the event Parquet files into one DataFrame (customer_id, event, occurred_at), add the
local day and month in the reporting time zone, then one function per metric with boolean
masks, ``drop_duplicates`` and ``groupby``. Same definitions as keepwell (``metrics_plan``).
Every event is in memory: fine at 10M events, not at 100M.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from metrics_plan import Plan, Stopwatch


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(day)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_label(index: int) -> str:
    return f"{index // 12}-{index % 12 + 1:02d}"


def load(files: list[str], timezone: str) -> pd.DataFrame:
    """All events with their local ``day`` (midnight, naive) and ``month`` (year*12+month-1)."""
    df = pd.concat(
        [pd.read_parquet(f, columns=["customer_id", "event", "occurred_at"]) for f in files],
        ignore_index=True,
    )
    local = df["occurred_at"].dt.tz_convert(timezone).dt.tz_localize(None)
    df["day"] = local.dt.normalize()
    df["month"] = local.dt.year * 12 + local.dt.month - 1
    return df


def active_customers(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    rows = []
    for p in plan.months():
        lo = min(p.first_day, p.end_day - timedelta(days=plan.mau_days))
        d = df.loc[(df["day"] >= _ts(lo)) & (df["day"] < _ts(p.end_day)), ["customer_id", "day"]]
        d = d.drop_duplicates()
        in_month = d[d["day"] >= _ts(p.first_day)]
        dau = len(in_month) / p.days
        wau = d.loc[d["day"] >= _ts(p.end_day - timedelta(days=plan.wau_days)), "customer_id"]
        mau = d.loc[d["day"] >= _ts(p.end_day - timedelta(days=plan.mau_days)), "customer_id"]
        rows.append(
            {
                "period": p.label,
                "days": p.days,
                "dau": dau,
                "wau": wau.nunique(),
                "mau": mau.nunique(),
                "stickiness": dau / mau.nunique() if mau.nunique() else np.nan,
                "period_actives": in_month["customer_id"].nunique(),
            }
        )
    return pd.DataFrame(rows)


def lifecycle(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    months = plan.months()
    first_m, end_m = _month_index(months[0].first_day), _month_index(plan.end)
    before = df[df["day"] < _ts(plan.end)]
    first = before.groupby("customer_id")["month"].min().rename("first_month")
    act = before.loc[before["month"] >= first_m - 1, ["customer_id", "month"]].drop_duplicates()
    prev = act.assign(month=act["month"] + 1, had_prev=True)
    cur = act[act["month"] >= first_m].merge(prev, on=["customer_id", "month"], how="left")
    cur["had_prev"] = cur["had_prev"].notna()
    cur = cur.merge(first, left_on="customer_id", right_index=True)
    is_new = cur["first_month"] == cur["month"]
    cur["new"] = is_new
    cur["returning"] = ~is_new & cur["had_prev"]
    cur["resurrecting"] = ~is_new & ~cur["had_prev"]
    states = cur.groupby("month")[["new", "returning", "resurrecting"]].sum()
    nxt = act.assign(month=act["month"] - 1, seen_next=True)
    gone = act.merge(nxt, on=["customer_id", "month"], how="left")
    gone = gone[gone["seen_next"].isna() & (gone["month"] + 1 < end_m)]
    dormant = (gone["month"] + 1).value_counts().rename("dormant")
    out = pd.DataFrame(index=range(first_m, end_m)).join(states).join(dormant).fillna(0)
    out = out.astype("int64")
    out["active"] = out["new"] + out["returning"] + out["resurrecting"]
    out.insert(0, "period", [_month_label(m) for m in out.index])
    return out.reset_index(drop=True)


def feature_adoption(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    months = plan.months()
    mask = (df["day"] >= _ts(months[0].first_day)) & (df["day"] < _ts(plan.end))
    used = df.loc[mask, ["customer_id", "event", "month"]].drop_duplicates()
    adopters = used.groupby(["month", "event"]).size().rename("adopters").reset_index()
    active = used.groupby("month")["customer_id"].nunique().rename("active_customers")
    out = adopters.merge(active, left_on="month", right_index=True)
    out["adoption_rate"] = out["adopters"] / out["active_customers"]
    out.insert(0, "period", out.pop("month").map(_month_label))
    return out


def usage_frequency(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    rows = []
    for p in plan.months():
        at = _ts(p.end_day)
        mask = (df["day"] >= at - pd.Timedelta(days=plan.lookback_days)) & (df["day"] < at)
        d = df.loc[mask, ["customer_id", "day"]].drop_duplicates()
        population = d["customer_id"].unique()
        recent = d[d["day"] >= at - pd.Timedelta(days=plan.window_days)]
        days = recent.groupby("customer_id").size().reindex(population, fill_value=0)
        median = float(days.median()) if len(days) else np.nan
        rows.append(
            {
                "period": p.label,
                "customers": len(days),
                "daily": int((days >= plan.daily_min).sum()),
                "weekly": int(((days >= plan.weekly_min) & (days < plan.daily_min)).sum()),
                "monthly": int(((days >= plan.monthly_min) & (days < plan.weekly_min)).sum()),
                "less_than_monthly": int((days < plan.monthly_min).sum()),
                "median_active_days": median,
                "forgotten_zone": median < plan.monthly_min if len(days) else None,
            }
        )
    return pd.DataFrame(rows)


def event_retention(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    first_m = _month_index(plan.months()[0].first_day)
    before = df[df["day"] < _ts(plan.end)]
    cohort = before.groupby("customer_id")["month"].min().rename("cohort")
    cohort = cohort[cohort >= first_m]
    act = before.loc[before["month"] >= first_m, ["customer_id", "month"]].drop_duplicates()
    j = act.merge(cohort, left_on="customer_id", right_index=True)
    j = j[j["month"] >= j["cohort"]]
    j["period_offset"] = j["month"] - j["cohort"]
    out = j.groupby(["cohort", "period_offset"]).size().rename("returned").reset_index()
    sizes = out[out["period_offset"] == 0].set_index("cohort")["returned"]
    out["cohort_size"] = out["cohort"].map(sizes)
    out["retention_rate"] = out["returned"] / out["cohort_size"]
    out["cohort"] = out["cohort"].map(_month_label)
    return out


def features(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    w, at = plan.window_days, _ts(plan.as_of)
    before = df[df["day"] < at]
    win = before[before["day"] >= at - pd.Timedelta(days=2 * w)]
    cur = win[win["day"] >= at - pd.Timedelta(days=w)]
    prev = win[win["day"] < at - pd.Timedelta(days=w)]
    out = pd.DataFrame(
        {
            "days_since_last_event": (at - before.groupby("customer_id")["day"].max()).dt.days,
            f"events_{w}": cur.groupby("customer_id").size(),
            f"events_prev_{w}": prev.groupby("customer_id").size(),
            f"active_days_{w}": cur.groupby("customer_id")["day"].nunique(),
            f"active_days_prev_{w}": prev.groupby("customer_id")["day"].nunique(),
        }
    )
    per_type = cur.groupby(["customer_id", "event"]).size().unstack(fill_value=0)
    per_type = per_type.reindex(columns=list(plan.event_types), fill_value=0)
    per_type.columns = [f"n{w}_{t}" for t in per_type.columns]
    out = out.join(per_type)
    counts = [c for c in out.columns if c != "days_since_last_event"]
    out[counts] = out[counts].fillna(0).astype("int64")
    return out.rename_axis("customer_id").reset_index()


METRICS = {
    "active_customers": active_customers,
    "lifecycle": lifecycle,
    "feature_adoption": feature_adoption,
    "usage_frequency": usage_frequency,
    "event_retention": event_retention,
    "features": features,
}


def run_suite(plan: Plan, files: list[str], out_dir: Path) -> dict[str, dict[str, float]]:
    """Load the events, run every metric, write each result to ``out_dir/<metric>.parquet``.

    Returns ``{"times": {step: wall s}, "cpu": {step: CPU s}}``; step ``load`` = reading the
    Parquet files into pandas."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with Stopwatch() as watch:
        df = load(files, plan.timezone)
    times, cpu = {"load": watch.wall}, {"load": watch.cpu}
    for name, func in METRICS.items():
        with Stopwatch() as watch:
            result = func(df, plan)
        times[name], cpu[name] = watch.wall, watch.cpu
        result.to_parquet(out_dir / f"{name}.parquet", index=False)
    return {"times": times, "cpu": cpu}
