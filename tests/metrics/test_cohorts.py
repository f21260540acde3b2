"""Cohort retention tables and retention curves: hand-computed triangles.

The worked example is the one in ``docs/metrics/cohorts.md``.
"""

from __future__ import annotations

import doctest
from datetime import date

import pandas as pd
import pytest

from keepwell.errors import InvalidInput
from keepwell.metrics import cohorts
from keepwell.metrics.cohorts import cohort_retention, retention_curve
from tests.metrics.conftest import subs, ts

Q1 = dict(start=date(2026, 1, 1), end=date(2026, 4, 1))

# Monthly cohorts Jan-Mar 2026, data known up to Apr 1 (USD, grace 7 days):
#   a  Jan 10, 1000; 2000 from Feb 20           ages at Feb 10 (1000), Mar 10 (2000)
#   b  Jan 31, 1000 until Mar 1                 Jan 31 + 1 month = Feb 28: active; Mar 31: gone
#   c  Jan 20, 3000 until Mar 1, back Mar 5     gap within grace: Mar 20 active, 3000 carried
#   e  Jan 5, 800 until Jan 25, back Mar 1      Feb 5: gone; Mar 5: back (reactivated), 800
#   g  Jan 12 free (MRR 0), 1500 from Feb 12    Feb 12: a row starts exactly then, 1500
#   d  Feb 15, 500                              Feb cohort; Apr 15 is after the data: censored
#   f  Dec 10 2025                              before the range: in no cohort
EXAMPLE = subs(
    ("a", "2026-01-10", "2026-02-20", 1000),
    ("a", "2026-02-20", None, 2000),
    ("b", "2026-01-31", "2026-03-01", 1000),
    ("c", "2026-01-20", "2026-03-01", 3000),
    ("c", "2026-03-05", None, 3000),
    ("e", "2026-01-05", "2026-01-25", 800),
    ("e", "2026-03-01", None, 800),
    ("g", "2026-01-12", "2026-02-12", 0, "free"),
    ("g", "2026-02-12", None, 1500),
    ("d", "2026-02-15", None, 500),
    ("f", "2025-12-10", None, 999),
)

COLUMNS = ["customers", "eligible", "retained", "mrr_start", "mrr"]


def table(src, **kw) -> pd.DataFrame:
    return src.con.execute(cohort_retention(src, **kw)).set_index(["cohort", "currency", "age"])


def test_cohort_triangle_worked_example(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    out = table(src, **Q1)
    assert sorted(set(out.index.get_level_values("cohort"))) == ["2026-01", "2026-02"]
    jan = out.loc["2026-01", "USD"]
    assert jan.loc[0, COLUMNS].tolist() == [5, 5, 5, 5800, 5800]
    assert jan.loc[1, COLUMNS].tolist() == [5, 5, 4, 5800, 6500]
    assert jan.loc[2, COLUMNS].tolist() == [5, 5, 4, 5800, 7300]
    assert jan.logo_retention.tolist() == [1.0, 0.8, 0.8]
    assert jan.revenue_retention.tolist() == pytest.approx([1.0, 6500 / 5800, 7300 / 5800])
    feb = out.loc["2026-02", "USD"]
    assert feb.loc[0, COLUMNS].tolist() == [1, 1, 1, 500, 500]
    assert feb.loc[1, COLUMNS].tolist() == [1, 1, 1, 500, 500]
    # Age 2 of February (Apr 15) is after the data: nobody eligible, rates null.
    assert feb.loc[2, COLUMNS].tolist() == [1, 0, 0, 0, 0]
    assert pd.isna(feb.loc[2].logo_retention) and pd.isna(feb.loc[2].revenue_retention)
    assert out.cohort_start.loc["2026-02"].iloc[0] == ts("2026-02-01")


def test_as_of_censors_each_member_at_their_own_anniversary(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    out = table(src, **Q1, as_of=date(2026, 3, 15))
    # Age 2 checkpoints: a Mar 10, e Mar 5, g Mar 12 are before Mar 15; b Mar 31, c Mar 20 not.
    age2 = out.loc["2026-01", "USD", 2]
    assert age2[COLUMNS].tolist() == [5, 3, 3, 1800, 4300]
    assert age2.logo_retention == 1.0
    assert age2.revenue_retention == pytest.approx(4300 / 1800)
    assert out.loc["2026-02", "USD", 1].eligible == 0  # Mar 15 is not before Mar 15


def test_retention_curve_weights_customers_not_cohorts(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    curve = src.con.execute(retention_curve(src, **Q1)).set_index("age")
    assert curve.eligible.tolist() == [6, 6, 5]
    assert curve.retained.tolist() == [6, 5, 4]
    assert curve.cohorts.tolist() == [2, 2, 1]
    assert curve.retention.tolist() == pytest.approx([1.0, 5 / 6, 0.8])


def test_curve_after_table_reuses_the_cohort_table_of_the_same_parameters(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    table(src, **Q1)
    curve = src.con.execute(retention_curve(src, **Q1)).set_index("age")
    table(src, **Q1, as_of=date(2026, 3, 15))  # another as_of: its own table
    shared = [k[0] for k in src.extra["shared_tables"]]
    assert shared.count("cohort_retention") == 2
    assert curve.retained.tolist() == [6, 5, 4]  # as computed alone (test above)
    censored = src.con.execute(retention_curve(src, **Q1, as_of=date(2026, 3, 15)))
    assert censored.set_index("age").eligible.tolist()[2] == 3  # a, e, g (see above)


def test_max_age_beyond_the_data_is_all_censored(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    out = table(src, **Q1, max_age=4)
    jan = out.loc["2026-01", "USD"]
    assert jan.index.tolist() == [0, 1, 2, 3, 4]
    assert jan.loc[3:, "eligible"].tolist() == [0, 0]
    assert jan.loc[3:, "logo_retention"].isna().all()
    curve = src.con.execute(retention_curve(src, **Q1, max_age=4)).set_index("age")
    assert curve.loc[4].eligible == 0 and pd.isna(curve.loc[4].retention)


def test_no_grace_makes_the_gap_a_loss(make_sources) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    out = table(src, **Q1, grace_days=0)
    # c's Mar 1-5 gap is no longer bridged, but Mar 20 falls in its second spell anyway;
    # b's last row ends exactly Mar 1 and nothing changes for the checkpoints either.
    assert out.loc["2026-01", "USD", 2].retained == 4
    no_grace = subs(("x", "2026-01-10", "2026-02-08", 100), ("x", "2026-02-12", None, 100))
    src = make_sources({"subscriptions": no_grace})
    assert table(src, **Q1).loc["2026-01", "USD", 1].retained == 1  # Feb 10 in a bridged gap
    assert table(src, **Q1, grace_days=0).loc["2026-01", "USD", 1].retained == 0


def test_weekly_cohorts(make_sources) -> None:
    src = make_sources(
        {
            "subscriptions": subs(
                ("a", "2026-01-07T10:00", "2026-01-14T12:00", 100),  # Jan 14 10:00: active
                ("b", "2026-01-08", "2026-01-15", 100),  # Jan 15 00:00: just ended
                ("c", "2026-01-13", None, 100),  # W03: age 1 = Jan 20, after the data
            )
        }
    )
    out = table(src, start=date(2026, 1, 5), end=date(2026, 1, 19), period="week")
    assert out.loc["2026-W02", "USD", 1][["eligible", "retained"]].tolist() == [2, 1]
    assert out.loc["2026-W03", "USD", 1].eligible == 0
    assert out.loc["2026-W03", "USD", 0].retained == 1


def test_quarterly_cohorts(make_sources) -> None:
    src = make_sources({"subscriptions": subs(("a", "2026-01-15", "2026-04-20", 100))})
    out = table(src, start=date(2026, 1, 1), end=date(2026, 7, 1), period="quarter")
    assert out.loc["2026-Q1", "USD", 1].retained == 1  # Apr 15


def test_cohorts_in_the_reporting_time_zone(make_sources) -> None:
    # 2026-01-31T23:30Z is Feb 1 00:30 in Berlin: a February customer there.
    rows = subs(("a", "2026-01-31T23:30", None, 100))
    src = make_sources({"subscriptions": rows}, timezone="Europe/Berlin")
    out = table(src, **Q1)
    assert out.index.get_level_values("cohort").unique().tolist() == ["2026-02"]
    assert out.cohort_start.iloc[0] == ts("2026-01-31T23:00")
    utc = table(make_sources({"subscriptions": rows}), **Q1)
    assert utc.index.get_level_values("cohort").unique().tolist() == ["2026-01"]


def test_currencies_split_the_cohort(make_sources) -> None:
    rows = subs(("a", "2026-01-05", "2026-02-01", 1000), ("b", "2026-01-06", None, 2000))
    rows["currency"] = ["USD", "EUR"]
    src = make_sources({"subscriptions": rows})
    out = table(src, **Q1)
    assert out.loc["2026-01", "USD", 1][COLUMNS].tolist() == [1, 1, 0, 1000, 0]
    assert out.loc["2026-01", "EUR", 1][COLUMNS].tolist() == [1, 1, 1, 2000, 2000]
    curve = src.con.execute(retention_curve(src, **Q1)).set_index("age")
    assert curve.loc[1].retention == 0.5


def test_breakdown_and_filter(make_sources) -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "signup_at": pd.to_datetime(["2026-01-01"] * 3),
            "industry": ["travel", None, "travel"],
        }
    )
    tags = pd.DataFrame({"customer_id": ["c"], "tag": ["vip"]})
    rows = subs(
        ("a", "2026-01-05", "2026-01-20", 100),
        ("b", "2026-01-06", None, 100),
        ("c", "2026-01-07", None, 100),
    )
    src = make_sources({"customers": customers, "customer_tags": tags, "subscriptions": rows})
    out = src.con.execute(cohort_retention(src, **Q1, by=["industry"]))
    age1 = out[out.age == 1]
    travel = age1[age1.industry == "travel"].iloc[0]
    unknown = age1[age1.industry.isna()].iloc[0]
    assert (travel.customers, travel.retained, travel.logo_retention) == (2, 1, 0.5)
    assert (unknown.customers, unknown.retained) == (1, 1)
    curve = src.con.execute(retention_curve(src, **Q1, by=["industry"]))
    assert len(curve) == 6  # two segments x ages 0..2
    vip = table(src, **Q1, filters={"tag": "vip"})
    assert vip.loc["2026-01", "USD", 0].customers == 1


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"max_age": -1}, "max_age"), ({"grace_days": -2}, "grace_days"), ({"by": ["nope"]}, "by")],
)
def test_bad_parameters_are_named(make_sources, kw, field) -> None:
    src = make_sources({"subscriptions": EXAMPLE})
    with pytest.raises(InvalidInput) as err:
        cohort_retention(src, **Q1, **kw)
    assert err.value.field == field


def test_docstring_examples_run() -> None:
    result = doctest.testmod(cohorts)
    assert result.attempted >= 1 and result.failed == 0
