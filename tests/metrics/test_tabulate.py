"""keepwell.metrics.tabulate: small expression helpers, by hand on DuckDB."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from keepwell.metrics.tabulate import group_unless_alone, ratio, sum_over_frame


def table(**cols) -> ibis.Table:
    return ibis.memtable(pd.DataFrame(cols))


def test_group_unless_alone_passes_lone_rows_and_groups_the_rest() -> None:
    con = ibis.duckdb.connect()
    t = table(
        customer=["a", "b", "b", "c"],
        period=[1, 1, 1, 2],
        x=[5, 2, 3, 7],
        y=[1, 4, 6, 9],
        n=[1, 2, 2, 1],  # rows per customer: a and c are alone
    )
    out = group_unless_alone(t, ["customer", "period"], {"x": "sum", "y": "max"}, t.n == 1)
    got = con.execute(out).sort_values("customer").reset_index(drop=True)
    # a: its row; b: 2 + 3 = 5 and max(4, 6) = 6; c: its row
    assert got.to_dict("list") == {
        "customer": ["a", "b", "c"],
        "period": [1, 1, 2],
        "x": [5, 5, 7],
        "y": [1, 6, 9],
    }


def test_group_unless_alone_refuses_other_reductions() -> None:
    t = table(k=["a"], x=[1])
    with pytest.raises(ValueError, match="sum or max"):
        group_unless_alone(t, ["k"], {"x": "mean"}, t.x == 1)


def test_ratio_and_sum_over_frame() -> None:
    con = ibis.duckdb.connect()
    t = table(g=["a", "a", "b"], v=[1, 2, 3], d=[2, 0, 4])
    r = con.execute(t.select(q=ratio(t.v, t.d)))["q"].tolist()
    assert r[0] == 0.5 and pd.isna(r[1]) and r[2] == 0.75
    frame = table(g=["a", "b", "z"])
    s = con.execute(sum_over_frame(t, frame, ["g"], ["v"])).sort_values("g")
    assert s.to_dict("list") == {"g": ["a", "b", "z"], "v": [3, 3, 0]}
