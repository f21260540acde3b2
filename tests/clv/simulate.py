"""Purchases simulated from known BG/NBD and Gamma-Gamma parameters (the models' own story)."""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2025-01-01")


def transactions(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    p: float = 6.0,
    q: float = 4.0,
    v: float = 15.0,
    days: float = 365.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Each customer's first purchase falls in the first quarter; then purchases at rate
    lambda ~ Gamma(r, alpha) (per day) until dropout, with probability p_i ~ Beta(a, b) after
    each repeat purchase; each amount ~ Gamma(p, nu_i), nu_i ~ Gamma(q, v). Returns the
    transactions (customer_id, ordered_at, amount) and the observation end."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    drop = rng.beta(a, b, n)
    nu = rng.gamma(q, 1 / v, n)
    first = rng.uniform(0, days / 4, n)
    rows = []
    for i in range(n):
        t = first[i]
        rows.append((f"s{i:05d}", t, rng.gamma(p, 1 / nu[i])))
        while True:
            t += rng.exponential(1 / lam[i])
            if t >= days:
                break
            rows.append((f"s{i:05d}", t, rng.gamma(p, 1 / nu[i])))
            if rng.random() < drop[i]:
                break
    df = pd.DataFrame(rows, columns=["customer_id", "t", "amount"])
    df["ordered_at"] = START + pd.to_timedelta(df.pop("t"), unit="D")
    return df, START + pd.Timedelta(days=days)
