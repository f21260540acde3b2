"""The hand-written DuckDB SQL suite: keepwell's event metrics straight from the raw Parquet.

What a competent analyst writes without a rollup: a view ``events`` over the event store's
Parquet files and one plain query per metric, each scanning the raw events it needs (local
days via ``timezone(zone, occurred_at)``, months via ``date_trunc``). Same definitions as
keepwell (``metrics_plan``); the results are checked against keepwell's by ``metrics.py``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
from metrics_plan import Plan, Stopwatch


def _values(rows: list[tuple]) -> str:
    def lit(v: object) -> str:
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        return f"DATE '{v.isoformat()}'"

    return "VALUES " + ", ".join("(" + ", ".join(lit(v) for v in row) + ")" for row in rows)


def queries(plan: Plan) -> dict[str, str]:
    """One SQL string per event metric, over a view ``events`` (occurred_at TIMESTAMPTZ)."""
    tz = plan.timezone.replace("'", "''")
    day = f"CAST(timezone('{tz}', occurred_at) AS DATE)"
    month = f"CAST(date_trunc('month', timezone('{tz}', occurred_at)) AS DATE)"
    months = plan.months()
    first, end = months[0].first_day, plan.end
    periods = _values([(p.label, p.first_day, p.end_day) for p in months])
    w, u = plan.window_days, plan.utc_sql
    out: dict[str, str] = {}

    lo = min(first, months[0].end_day - timedelta(days=max(plan.mau_days, plan.wau_days)))
    out["active_customers"] = f"""
        WITH p(period, first_day, end_day) AS ({periods}),
        d AS (
            SELECT DISTINCT customer_id, {day} AS day FROM events
            WHERE occurred_at >= {u(lo)} AND occurred_at < {u(end)}
        ),
        a AS (
            SELECT p.period, p.end_day - p.first_day AS days,
                count(*) FILTER (WHERE d.day >= p.first_day) / (p.end_day - p.first_day) AS dau,
                count(DISTINCT d.customer_id) FILTER (WHERE d.day >= p.end_day - {plan.wau_days})
                    AS wau,
                count(DISTINCT d.customer_id) FILTER (WHERE d.day >= p.end_day - {plan.mau_days})
                    AS mau,
                count(DISTINCT d.customer_id) FILTER (WHERE d.day >= p.first_day)
                    AS period_actives
            FROM p JOIN d
              ON d.day >= least(p.first_day, p.end_day - {plan.mau_days}) AND d.day < p.end_day
            GROUP BY p.period, p.first_day, p.end_day
        )
        SELECT *, CASE WHEN mau > 0 THEN dau / mau END AS stickiness FROM a ORDER BY period
    """

    before = plan.months(before=1)[0].first_day
    out["lifecycle"] = f"""
        WITH p(period, first_day, end_day) AS ({periods}),
        act AS (
            SELECT DISTINCT customer_id, {month} AS month FROM events
            WHERE occurred_at >= {u(before)} AND occurred_at < {u(end)}
        ),
        first_seen AS (
            SELECT customer_id,
                CAST(date_trunc('month', timezone('{tz}', min(occurred_at))) AS DATE) AS first_month
            FROM events WHERE occurred_at < {u(end)} GROUP BY customer_id
        ),
        cur AS (
            SELECT a.month, f.first_month, prev.customer_id IS NOT NULL AS had_prev
            FROM act a JOIN first_seen f USING (customer_id)
            LEFT JOIN act prev
              ON prev.customer_id = a.customer_id AND prev.month = a.month - INTERVAL 1 MONTH
            WHERE a.month >= DATE '{first}'
        ),
        states AS (
            SELECT month,
                count(*) FILTER (WHERE first_month = month) AS new,
                count(*) FILTER (WHERE first_month < month AND had_prev) AS "returning",
                count(*) FILTER (WHERE first_month < month AND NOT had_prev) AS resurrecting
            FROM cur GROUP BY month
        ),
        dormant AS (
            SELECT CAST(a.month + INTERVAL 1 MONTH AS DATE) AS month, count(*) AS dormant
            FROM act a LEFT JOIN act nxt
              ON nxt.customer_id = a.customer_id AND nxt.month = a.month + INTERVAL 1 MONTH
            WHERE nxt.customer_id IS NULL AND a.month + INTERVAL 1 MONTH < DATE '{end}'
            GROUP BY 1
        )
        SELECT p.period, coalesce(new, 0) AS new, coalesce("returning", 0) AS "returning",
            coalesce(resurrecting, 0) AS resurrecting, coalesce(dormant, 0) AS dormant,
            coalesce(new, 0) + coalesce("returning", 0) + coalesce(resurrecting, 0) AS active
        FROM p LEFT JOIN states s ON s.month = p.first_day
        LEFT JOIN dormant d ON d.month = p.first_day
        ORDER BY p.period
    """

    out["feature_adoption"] = f"""
        WITH used AS (
            SELECT DISTINCT customer_id, event, {month} AS month FROM events
            WHERE occurred_at >= {u(first)} AND occurred_at < {u(end)}
        ),
        active AS (
            SELECT month, count(DISTINCT customer_id) AS active_customers FROM used GROUP BY month
        )
        SELECT strftime(month, '%Y-%m') AS period, event, count(*) AS adopters,
            any_value(active_customers) AS active_customers,
            count(*) / any_value(active_customers) AS adoption_rate
        FROM used JOIN active USING (month)
        GROUP BY month, event ORDER BY period, event
    """

    look = plan.lookback_days
    out["usage_frequency"] = f"""
        WITH p(period, first_day, end_day) AS ({periods}),
        d AS (
            SELECT DISTINCT customer_id, {day} AS day FROM events
            WHERE occurred_at >= {u(months[0].end_day - timedelta(days=look))}
              AND occurred_at < {u(end)}
        ),
        usage AS (
            SELECT p.period, d.customer_id,
                count(*) FILTER (WHERE d.day >= p.end_day - {w}) AS active_days
            FROM p JOIN d ON d.day >= p.end_day - {look} AND d.day < p.end_day
            GROUP BY ALL
        )
        SELECT period, count(*) AS customers,
            count(*) FILTER (WHERE active_days >= {plan.daily_min}) AS daily,
            count(*) FILTER (WHERE active_days >= {plan.weekly_min}
                             AND active_days < {plan.daily_min}) AS weekly,
            count(*) FILTER (WHERE active_days >= {plan.monthly_min}
                             AND active_days < {plan.weekly_min}) AS monthly,
            count(*) FILTER (WHERE active_days < {plan.monthly_min}) AS less_than_monthly,
            median(active_days) AS median_active_days,
            median(active_days) < {plan.monthly_min} AS forgotten_zone
        FROM usage GROUP BY period ORDER BY period
    """

    out["event_retention"] = f"""
        WITH act AS (
            SELECT DISTINCT customer_id, {month} AS month FROM events
            WHERE occurred_at >= {u(first)} AND occurred_at < {u(end)}
        ),
        cohort AS (
            SELECT customer_id,
                CAST(date_trunc('month', timezone('{tz}', min(occurred_at))) AS DATE) AS cohort
            FROM events WHERE occurred_at < {u(end)} GROUP BY customer_id
            HAVING cohort >= DATE '{first}'
        ),
        cells AS (
            SELECT c.cohort, datediff('month', c.cohort, a.month) AS period_offset,
                count(*) AS returned
            FROM cohort c JOIN act a USING (customer_id)
            WHERE a.month >= c.cohort
            GROUP BY ALL
        )
        SELECT strftime(cohort, '%Y-%m') AS cohort, period_offset,
            max(returned) OVER (PARTITION BY cohort) AS cohort_size, returned,
            returned / max(returned) OVER (PARTITION BY cohort) AS retention_rate
        FROM cells ORDER BY cohort, period_offset
    """

    as_of = plan.as_of
    per_type = ",\n                ".join(
        f"count(*) FILTER (WHERE day >= DATE '{as_of}' - {w} AND event = '{t}') AS n{w}_{t}"
        for t in plan.event_types
    )
    out["features"] = f"""
        WITH win AS (
            SELECT customer_id, event, {day} AS day FROM events
            WHERE occurred_at >= {u(as_of - timedelta(days=2 * w))} AND occurred_at < {u(as_of)}
        ),
        counts AS (
            SELECT customer_id,
                count(*) FILTER (WHERE day >= DATE '{as_of}' - {w}) AS events_{w},
                count(*) FILTER (WHERE day < DATE '{as_of}' - {w}) AS events_prev_{w},
                count(DISTINCT day) FILTER (WHERE day >= DATE '{as_of}' - {w}) AS active_days_{w},
                count(DISTINCT day) FILTER (WHERE day < DATE '{as_of}' - {w})
                    AS active_days_prev_{w},
                {per_type}
            FROM win GROUP BY customer_id
        ),
        last_seen AS (
            SELECT customer_id,
                DATE '{as_of}' - CAST(timezone('{tz}', max(occurred_at)) AS DATE)
                    AS days_since_last_event
            FROM events WHERE occurred_at < {u(as_of)} GROUP BY customer_id
        )
        SELECT * FROM last_seen LEFT JOIN counts USING (customer_id)
    """
    return out


def run_suite(plan: Plan, files: list[str], out_dir: Path) -> dict[str, dict[str, float]]:
    """Run every query over ``files``; write each result to ``out_dir/<metric>.parquet``.

    Returns ``{"times": {metric: wall s}, "cpu": {metric: CPU s}}`` (query and fetch into
    pandas)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{listed}])")
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, sql in queries(plan).items():
        with Stopwatch() as watch:
            df = con.execute(sql).df()
        times[name], cpu[name] = watch.wall, watch.cpu
        df.to_parquet(out_dir / f"{name}.parquet", index=False)
    con.close()
    return {"times": times, "cpu": cpu}
