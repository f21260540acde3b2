"""A small, varied business for cross-backend metric tests (deterministic, hand-readable).

40 customers over 2025-07 .. 2026-06 with upgrades, downgrades, gaps within and beyond the
grace period, churn and reactivation in one month, two currencies, annual plans, orders,
invoices, surveys, tickets and usage events that straddle month boundaries in Berlin time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

INDUSTRIES = ["travel", "healthcare", "retail", "software"]


def _ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day)


def frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(42)
    customers, subs, invoices, orders, surveys, tickets, events, tags = ([] for _ in range(8))
    start = _ts("2025-07-01")
    for i in range(40):
        cid = f"c{i:02d}"
        signup = start + pd.Timedelta(
            days=int(rng.integers(0, 300)), hours=int(rng.integers(0, 24))
        )
        industry = INDUSTRIES[i % 4]
        customers.append(
            {
                "customer_id": cid,
                "signup_at": signup,
                "industry": industry,
                "country": "DE" if i % 3 else "US",
                "status": "active",
                "owner": f"owner{i % 3}@x.test",
                "attr_plan_family": "self-serve" if i % 2 else "sales",
            }
        )
        if i % 5 == 0:
            tags.append({"customer_id": cid, "tag": "vip"})
        if i % 7 == 0:
            tags.append({"customer_id": cid, "tag": "beta"})
        currency = "EUR" if i % 6 == 0 else "USD"
        mrr = int(rng.choice([2900, 9900, 29900]))
        t0 = signup
        kind = i % 8
        rows = []
        if kind == 0:  # steady
            rows.append((t0, None, mrr))
        elif kind == 1:  # upgrade after 2 months
            t1 = t0 + pd.Timedelta(days=61)
            rows += [(t0, t1, mrr), (t1, None, mrr * 3)]
        elif kind == 2:  # downgrade then churn
            t1 = t0 + pd.Timedelta(days=45)
            rows += [(t0, t1, mrr * 2), (t1, t1 + pd.Timedelta(days=70), mrr)]
        elif kind == 3:  # gap within grace (5 days)
            t1 = t0 + pd.Timedelta(days=40)
            rows += [(t0, t1, mrr), (t1 + pd.Timedelta(days=5), None, mrr)]
        elif kind == 4:  # churn then reactivation after 50 days
            t1 = t0 + pd.Timedelta(days=35)
            rows += [(t0, t1, mrr), (t1 + pd.Timedelta(days=50), None, mrr)]
        elif kind == 5:  # churn quickly
            rows.append((t0, t0 + pd.Timedelta(days=20), mrr))
        elif kind == 6:  # upgrade then downgrade within a month
            t1, t2 = t0 + pd.Timedelta(days=33), t0 + pd.Timedelta(days=40)
            rows += [(t0, t1, mrr), (t1, t2, mrr * 2), (t2, None, mrr)]
        else:  # churn exactly at a month boundary
            end = (t0 + pd.offsets.MonthBegin(2)).normalize()
            rows.append((t0, end, mrr))
        for n, (s, e, m) in enumerate(rows):
            subs.append(
                {
                    "customer_id": cid,
                    "plan": f"plan{m}",
                    "mrr_minor": m,
                    "currency": currency,
                    "started_at": s,
                    "ended_at": e,
                }
            )
            invoices.append(
                {
                    "customer_id": cid,
                    "amount_minor": m,
                    "currency": currency,
                    "issued_at": s,
                    "due_at": s + pd.Timedelta(days=14),
                    "paid_at": None if (i + n) % 9 == 0 else s + pd.Timedelta(days=3),
                    "status": "failed" if (i + n) % 9 == 0 else "paid",
                }
            )
        for k in range(int(rng.integers(0, 4))):
            orders.append(
                {
                    "customer_id": cid,
                    "ordered_at": signup + pd.Timedelta(days=30 * k + 3),
                    "amount_minor": int(rng.integers(500, 5000)),
                    "currency": "USD",
                    "category": ["shoes", "bags"][k % 2],
                    "status": "completed",
                }
            )
        surveys.append(
            {
                "customer_id": cid,
                "kind": "nps",
                "score": int(rng.integers(0, 11)),
                "responded_at": signup + pd.Timedelta(days=30),
            }
        )
        if i % 4 == 0:
            tickets.append(
                {
                    "customer_id": cid,
                    "priority": "high",
                    "opened_at": signup + pd.Timedelta(days=10),
                    "closed_at": signup + pd.Timedelta(days=12),
                }
            )
        # usage: a habit level per customer; some events near UTC midnight (Berlin next day)
        active_days = int(rng.integers(5, 120))
        days = np.sort(rng.choice(330, size=active_days, replace=False))
        for d in days:
            when = signup + pd.Timedelta(days=int(d) - 10)  # some before signup
            for ev in rng.choice(
                ["login", "report_created", "export", "api-call"], size=int(rng.integers(1, 4))
            ):
                events.append(
                    {
                        "customer_id": cid,
                        "event": str(ev),
                        "occurred_at": when.normalize() + pd.Timedelta(hours=23, minutes=30),
                        "user_id": f"{cid}-u{int(rng.integers(0, 3))}",
                        "value": float(rng.integers(0, 10)),
                    }
                )
        if i % 10 == 0 and events:  # a duplicate event
            events.append(dict(events[-1]))
    return {
        "customers": pd.DataFrame(customers),
        "customer_tags": pd.DataFrame(tags),
        "subscriptions": pd.DataFrame(subs),
        "invoices": pd.DataFrame(invoices),
        "orders": pd.DataFrame(orders),
        "surveys": pd.DataFrame(surveys),
        "tickets": pd.DataFrame(tickets),
        "events": pd.DataFrame(events),
    }
