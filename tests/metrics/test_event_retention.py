"""Event retention: hand-computed triangles on DuckDB and PostgreSQL, a naive pandas oracle,
rollup == raw events, and non-default parameters on PostgreSQL and PySpark."""

from __future__ import annotations

import doctest
import warnings
from datetime import date

import pandas as pd
import pytest

from keepwell.errors import InvalidInput
from keepwell.metrics import event_retention as module
from keepwell.metrics import periods as P
from keepwell.metrics.daily import event_slug as event_type
from keepwell.metrics.event_retention import event_retention
from keepwell.metrics.sources import Sources
from tests.metrics.dataset import frames as dataset_frames

# -- helpers ----------------------------------------------------------------------------------


def events(*rows: tuple) -> pd.DataFrame:
    """Event rows: (customer_id, event, occurred_at UTC[, user_id])."""
    records = [
        {
            "customer_id": cid,
            "event": name,
            "occurred_at": pd.Timestamp(at),
            "user_id": rest[0] if rest else None,
            "value": 1.0,
        }
        for cid, name, at, *rest in rows
    ]
    return pd.DataFrame.from_records(records)


def customers(**industry: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": list(industry),
            "signup_at": pd.Timestamp("2025-01-01"),
            "industry": list(industry.values()),
        }
    )


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_src(request, duckdb_con):
    """Build Sources from frames on DuckDB or PostgreSQL."""
    con = duckdb_con if request.param == "duckdb" else request.getfixturevalue("pg_ibis_con")

    def make(frames: dict[str, pd.DataFrame], *, timezone: str = "UTC") -> Sources:
        return Sources.from_frames(con, frames, timezone=timezone, prefix="kw_er_")

    return make


def run(src: Sources, **kw) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # driver deprecation chatter
        return src.con.execute(event_retention(src, **kw))


def triangle(df: pd.DataFrame, value: str = "returned") -> dict[str, list[int]]:
    """{cohort: [value at offset 0, 1, ...]} (one group)."""
    df = df.sort_values(["cohort_start", "period_offset"])
    return {c: [int(v) for v in g[value]] for c, g in df.groupby("cohort", sort=False)}


def sizes(df: pd.DataFrame) -> dict[str, int]:
    return {c: int(g.cohort_size.iloc[0]) for c, g in df.groupby("cohort")}


# -- hand-computed triangles --------------------------------------------------------------------

# Weeks (UTC, Monday): W10 = Mar 2, W11 = Mar 9, W12 = Mar 16, W13 = Mar 23; the range
# [Mar 2, Mar 30) holds exactly these four complete weeks.
#   a: W10, W11, W13          b: W10, W12          c: W11, W12, W13
#   d: W09 (before the range), W11                  e: W12 (three duplicates), W13
WEEKLY = events(
    ("a", "login", "2026-03-02 09:00"),
    ("a", "login", "2026-03-11 09:00"),
    ("a", "login", "2026-03-27 09:00"),
    ("b", "login", "2026-03-08 22:00"),
    ("b", "login", "2026-03-16 00:00"),
    ("c", "login", "2026-03-09 00:00"),
    ("c", "login", "2026-03-20 09:00"),
    ("c", "login", "2026-03-29 23:59"),
    ("d", "login", "2026-02-25 09:00"),
    ("d", "login", "2026-03-10 09:00"),
    ("e", "login", "2026-03-18 09:00"),
    ("e", "login", "2026-03-18 09:00"),
    ("e", "login", "2026-03-18 09:00"),
    ("e", "login", "2026-03-23 09:00"),
    ("f", "login", "2026-03-30 00:00"),  # after the last complete week: ignored
)
MARCH = {"start": date(2026, 3, 2), "end": date(2026, 3, 30), "period": "week"}


@pytest.mark.parametrize(
    ("cohort", "returning", "expected_sizes", "expected"),
    [
        # first-time: W10 {a, b}; W11 {c} (d started in W09); W12 {e}; W13 nobody
        (
            "first_time",
            "on",
            {"2026-W10": 2, "2026-W11": 1, "2026-W12": 1, "2026-W13": 0},
            {
                "2026-W10": [2, 1, 1, 1],  # a in W11, b in W12, a in W13
                "2026-W11": [1, 1, 1],  # c in W12 and W13
                "2026-W12": [1, 1],  # e in W13 (duplicates count once)
                "2026-W13": [0],
            },
        ),
        (
            "first_time",
            "on_or_after",
            {"2026-W10": 2, "2026-W11": 1, "2026-W12": 1, "2026-W13": 0},
            {
                "2026-W10": [2, 2, 2, 1],  # a (last seen W13), b (last seen W12)
                "2026-W11": [1, 1, 1],
                "2026-W12": [1, 1],
                "2026-W13": [0],
            },
        ),
        # recurring: W10 {a, b}; W11 {a, c, d}; W12 {b, c, e}; W13 {a, c, e}
        (
            "recurring",
            "on",
            {"2026-W10": 2, "2026-W11": 3, "2026-W12": 3, "2026-W13": 3},
            {
                "2026-W10": [2, 1, 1, 1],
                "2026-W11": [3, 1, 2],  # W12: c; W13: a, c
                "2026-W12": [3, 2],  # W13: c, e
                "2026-W13": [3],
            },
        ),
        (
            "recurring",
            "on_or_after",
            {"2026-W10": 2, "2026-W11": 3, "2026-W12": 3, "2026-W13": 3},
            {
                "2026-W10": [2, 2, 2, 1],
                "2026-W11": [3, 2, 2],  # W12 or later: a (W13), c
                "2026-W12": [3, 2],
                "2026-W13": [3],
            },
        ),
    ],
)
def test_weekly_triangles(make_src, cohort, returning, expected_sizes, expected) -> None:
    src = make_src({"events": WEEKLY})
    out = run(src, **MARCH, cohort=cohort, returning=returning)
    assert sizes(out) == expected_sizes
    assert triangle(out) == expected
    w10 = out[out.cohort == "2026-W10"].set_index("period_offset").retention_rate
    assert list(w10) == pytest.approx([e / 2 for e in expected["2026-W10"]])
    assert out[out.cohort_size == 0].retention_rate.isna().all()
    assert list(out.columns) == [
        "cohort",
        "cohort_start",
        "period_offset",
        "cohort_size",
        "returned",
        "retention_rate",
    ]


def test_max_periods_caps_the_offsets(make_src) -> None:
    src = make_src({"events": WEEKLY})
    out = run(src, **MARCH, max_periods=1)
    assert triangle(out) == {
        "2026-W10": [2, 1],
        "2026-W11": [1, 1],
        "2026-W12": [1, 1],
        "2026-W13": [0],
    }
    out = run(src, **MARCH, max_periods=0, returning="on_or_after")
    assert triangle(out) == {"2026-W10": [2], "2026-W11": [1], "2026-W12": [1], "2026-W13": [0]}


# Months, start event "signup" and return event "report_created", spelled three ways.
#   p: signup Jan 10; report Feb 3 and Apr 1
#   q: signup Jan 20; report Jan 25 (same month: not a return)
#   r: report only (never signs up: in no cohort)
#   s: signup Feb 14 and again Mar 2; report Mar 10
MONTHLY = events(
    ("p", "signup", "2026-01-10 10:00"),
    ("p", "Report Created", "2026-02-03 10:00"),
    ("p", "report-created", "2026-04-01 10:00"),
    ("q", "signup", "2026-01-20 10:00"),
    ("q", "report_created", "2026-01-25 10:00"),
    ("r", "report_created", "2026-02-05 10:00"),
    ("s", "Signup", "2026-02-14 10:00"),
    ("s", "signup", "2026-03-02 10:00"),
    ("s", "report_created", "2026-03-10 10:00"),
)
JAN_APR = {"start": date(2026, 1, 1), "end": date(2026, 5, 1), "period": "month"}


@pytest.mark.parametrize("return_event", ["report_created", "Report Created"])
def test_start_event_differs_from_return_event(make_src, return_event) -> None:
    src = make_src({"events": MONTHLY})
    out = run(src, **JAN_APR, start_event="signup", return_event=return_event)
    assert sizes(out) == {"2026-01": 2, "2026-02": 1, "2026-03": 0, "2026-04": 0}
    assert triangle(out) == {
        "2026-01": [2, 1, 0, 1],  # p in Feb and Apr; q's report is in its own month
        "2026-02": [1, 1, 0],  # s in Mar
        "2026-03": [0, 0],
        "2026-04": [0],
    }
    recurring = run(
        src, **JAN_APR, start_event="signup", return_event=return_event, cohort="recurring"
    )
    assert triangle(recurring)["2026-03"] == [1, 0]  # s signs up again in March, no report in Apr


def test_any_event_when_no_event_is_named(make_src) -> None:
    src = make_src({"events": MONTHLY})
    out = run(src, **JAN_APR)
    # first events: p, q in Jan; r, s in Feb
    assert triangle(out) == {
        "2026-01": [2, 1, 0, 1],
        "2026-02": [2, 1, 0],
        "2026-03": [0, 0],
        "2026-04": [0],
    }
    only_start = run(src, **JAN_APR, start_event="report_created")
    # first reports: q Jan, p and r Feb, s Mar; returns = any event
    assert triangle(only_start) == {
        "2026-01": [1, 0, 0, 0],
        "2026-02": [2, 0, 1],  # p in Apr
        "2026-03": [1, 0],
        "2026-04": [0],
    }
    only_return = run(src, **JAN_APR, return_event="report_created")
    assert triangle(only_return)["2026-01"] == [2, 1, 0, 1]
    assert triangle(only_return)["2026-02"] == [2, 1, 0]  # r's only event is its start


def test_an_unknown_event_gives_empty_cohorts(make_src) -> None:
    out = run(make_src({"events": MONTHLY}), **JAN_APR, start_event="never_happens")
    assert (out.cohort_size == 0).all() and len(out) == 10


# Local time: Europe/Berlin is UTC+1 until 2026-03-29, UTC+2 after.
BERLIN = events(
    ("x", "login", "2026-03-01 23:30"),  # Mon Mar 2, 00:30 in Berlin (Sun Mar 1 in UTC)
    ("x", "login", "2026-03-02 12:00"),
    ("x", "login", "2026-03-03 23:30"),  # Wed Mar 4 in Berlin
    ("y", "login", "2026-03-02 22:59"),  # Mar 2, 23:59 in Berlin
    ("y", "login", "2026-03-02 23:00"),  # Mar 3, 00:00 in Berlin
)


def test_days_in_a_non_utc_time_zone(make_src) -> None:
    rng = {"start": date(2026, 3, 2), "end": date(2026, 3, 5), "period": "day"}
    berlin = run(make_src({"events": BERLIN}, timezone="Europe/Berlin"), **rng)
    assert triangle(berlin) == {
        "2026-03-02": [2, 1, 1],  # y back on Mar 3, x on Mar 4
        "2026-03-03": [0, 0],
        "2026-03-04": [0],
    }
    assert berlin.cohort_start.iloc[0] == pd.Timestamp("2026-03-01 23:00")
    utc = run(make_src({"events": BERLIN}), **rng)
    # in UTC x started on Mar 1 (before the range); y's two events are both on Mar 2
    assert triangle(utc) == {"2026-03-02": [1, 0, 0], "2026-03-03": [0, 0], "2026-03-04": [0]}


def test_weeks_and_months_in_a_non_utc_time_zone(make_src) -> None:
    rows = events(
        ("m", "login", "2026-03-08 23:30"),  # Sunday in UTC, Monday Mar 9 (W11) in Berlin
        ("m", "login", "2026-03-31 22:30"),  # Apr 1, 00:30 CEST: April in Berlin
        ("n", "login", "2026-03-02 12:00"),
        ("n", "login", "2026-03-15 22:30"),  # Sunday 23:30 in Berlin: still W11
    )
    src_b = make_src({"events": rows}, timezone="Europe/Berlin")
    weeks = run(src_b, start=date(2026, 3, 2), end=date(2026, 3, 23), period="week")
    assert triangle(weeks) == {"2026-W10": [1, 1, 0], "2026-W11": [1, 0], "2026-W12": [0]}
    months = run(src_b, start=date(2026, 3, 1), end=date(2026, 5, 1), period="month")
    assert triangle(months) == {"2026-03": [2, 1], "2026-04": [0]}  # m back in April
    src_u = make_src({"events": rows})
    utc_weeks = run(src_u, start=date(2026, 3, 2), end=date(2026, 3, 23), period="week")
    # in UTC m starts on Sunday Mar 8 (W10) and its March 31 event stays in March
    assert triangle(utc_weeks) == {"2026-W10": [2, 1, 0], "2026-W11": [0, 0], "2026-W12": [0]}
    utc_months = run(src_u, start=date(2026, 3, 1), end=date(2026, 5, 1), period="month")
    assert triangle(utc_months) == {"2026-03": [2, 0], "2026-04": [0]}


def test_incomplete_periods_are_left_out(make_src) -> None:
    src = make_src({"events": WEEKLY})
    out = run(src, start=date(2026, 3, 4), end=date(2026, 3, 26), period="week")
    # start floors to Monday Mar 2; the week of Mar 23 ends after Mar 26, so it is not analysed
    assert triangle(out) == {"2026-W10": [2, 1, 1], "2026-W11": [1, 1], "2026-W12": [1]}


def test_breakdown_and_filter_by_industry(make_src) -> None:
    src = make_src(
        {
            "events": WEEKLY,
            "customers": customers(a="retail", b="travel", c="retail", d="retail", e="travel"),
            "customer_tags": pd.DataFrame({"customer_id": ["a", "c"], "tag": ["vip", "vip"]}),
        }
    )
    out = run(src, **MARCH, cohort="recurring", by=["industry"])
    retail = triangle(out[out.industry == "retail"])  # a, c, d
    travel = triangle(out[out.industry == "travel"])  # b, e
    assert retail == {
        "2026-W10": [1, 1, 0, 1],  # a
        "2026-W11": [3, 1, 2],  # a, c, d: c in W12; a, c in W13
        "2026-W12": [1, 1],  # c
        "2026-W13": [2],  # a, c
    }
    assert travel == {
        "2026-W10": [1, 0, 1, 0],  # b
        "2026-W11": [0, 0, 0],
        "2026-W12": [2, 1],  # b, e: e in W13
        "2026-W13": [1],
    }
    vip = run(src, **MARCH, cohort="recurring", filters={"tag": "vip"})
    assert triangle(vip) == {
        "2026-W10": [1, 1, 0, 1],
        "2026-W11": [2, 1, 2],
        "2026-W12": [1, 1],
        "2026-W13": [2],
    }
    by_tag = run(src, **MARCH, by=["tag"])
    assert set(by_tag.tag.dropna()) == {"vip"} and by_tag.tag.isna().any()  # untagged: null


def test_user_unit(make_src) -> None:
    rows = events(
        ("a", "login", "2026-03-02 09:00", "u1"),
        ("a", "login", "2026-03-03 09:00", "u2"),
        ("a", "login", "2026-03-10 09:00", "u1"),  # u1 returns in W11
        ("b", "login", "2026-03-04 09:00", "u1"),  # another customer's u1: another user
        ("b", "login", "2026-03-12 09:00"),  # no user: not counted for users
        ("b", "login", "2026-03-17 09:00", "u1"),
    )
    src = make_src({"events": rows})
    rng = {"start": date(2026, 3, 2), "end": date(2026, 3, 23), "period": "week"}
    users = run(src, **rng, unit="user")
    assert triangle(users) == {"2026-W10": [3, 1, 1], "2026-W11": [0, 0], "2026-W12": [0]}
    custs = run(src, **rng)
    assert triangle(custs) == {"2026-W10": [2, 2, 1], "2026-W11": [0, 0], "2026-W12": [0]}


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"period": "fortnight"}, "period"),
        ({"cohort": "first"}, "cohort"),
        ({"returning": "after"}, "returning"),
        ({"unit": "account"}, "unit"),
        ({"max_periods": -1}, "max_periods"),
        ({"max_periods": "three"}, "max_periods"),
        ({"start_event": "!!"}, "start_event"),
        ({"by": ["planet"]}, "by"),
        ({"filters": {"planet": "mars"}}, "filter"),
        ({"end": date(2026, 3, 8)}, "to"),  # no complete week in [Mar 2, Mar 8)
    ],
)
def test_bad_parameters_are_named(make_sources, kw, field) -> None:
    src = make_sources({"events": WEEKLY})
    params = {**MARCH, **kw}
    with pytest.raises(InvalidInput) as err:
        event_retention(src, **params)
    assert err.value.field == field


def test_docstring_examples_run() -> None:
    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0


def test_a_numeric_event_name_from_the_command_line_is_an_event_name(make_sources) -> None:
    src = make_sources({"events": events(("a", "404", "2026-03-02 09:00"))})
    out = run(src, **MARCH, start_event=404)  # `--param start_event=404` arrives as an int
    assert sizes(out)["2026-W10"] == 1


# -- oracle: a naive pandas implementation on the shared dataset -------------------------------


def oracle(
    ev: pd.DataFrame,
    *,
    start: date,
    end: date,
    period: str,
    tz: str,
    start_event: str | None = None,
    return_event: str | None = None,
    cohort: str = "first_time",
    returning: str = "on",
    unit: str = "customer",
) -> dict[tuple[str, int], tuple[int, int]]:
    """{(cohort, offset): (cohort_size, returned)} computed row by row with pandas."""
    spans = [
        s
        for s in P.grid(start, end, period, tz=tz)
        if s.first_day + P.STEP[P.Period(period)] <= end
    ]
    ev = ev.copy()
    if unit == "user":
        ev = ev[ev.user_id.notna()]
        ev["unit"] = list(zip(ev.customer_id, ev.user_id, strict=True))
    else:
        ev["unit"] = ev.customer_id
    ev["type"] = ev.event.map(event_type)

    def idx(at: pd.Timestamp) -> int | None:
        for i, s in enumerate(spans):
            if s.start <= at < s.end:
                return i
        return None

    ev["idx"] = ev.occurred_at.map(idx)

    def units(kind: str | None, i: int) -> set:
        rows = ev[ev.idx == i]
        if kind is not None:
            rows = rows[rows.type == event_type(kind)]
        return set(rows.unit)

    starts = ev if start_event is None else ev[ev.type == event_type(start_event)]
    starts = starts[starts.occurred_at < spans[-1].end]
    first = starts.groupby("unit").occurred_at.min().map(idx)
    out = {}
    for i, span in enumerate(spans):
        if cohort == "first_time":
            members = {u for u, j in first.items() if j == i}
        else:
            members = units(start_event, i)
        for n in range(len(spans) - i):
            if n == 0:
                back = members
            elif returning == "on":
                back = members & units(return_event, i + n)
            else:
                back = members & set().union(
                    *(units(return_event, k) for k in range(i + n, len(spans)))
                )
            out[span.label, n] = (len(members), len(back))
    return out


def as_cells(df: pd.DataFrame) -> dict[tuple[str, int], tuple[int, int]]:
    return {
        (r.cohort, int(r.period_offset)): (int(r.cohort_size), int(r.returned))
        for r in df.itertuples()
    }


ORACLE_CASES = [
    {"period": "month"},
    {"period": "month", "cohort": "recurring", "returning": "on_or_after"},
    {"period": "week", "start_event": "login", "return_event": "report_created"},
    {"period": "week", "cohort": "recurring", "start_event": "api-call", "unit": "user"},
    {"period": "day", "returning": "on_or_after", "return_event": "export"},
    {"period": "quarter", "cohort": "recurring"},
]


def _window(period: str) -> dict:
    if period == "day":
        return {"start": date(2025, 10, 1), "end": date(2025, 11, 5)}
    if period == "week":
        return {"start": date(2025, 9, 1), "end": date(2026, 1, 5)}
    return {"start": date(2025, 7, 1), "end": date(2026, 7, 1)}


@pytest.mark.parametrize("case", ORACLE_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_matches_a_naive_pandas_oracle(make_sources, case) -> None:
    data = dataset_frames()
    src = make_sources(data, timezone="Europe/Berlin")
    params = {**_window(case["period"]), **case}
    got = as_cells(run(src, **params))
    want = oracle(data["events"], tz="Europe/Berlin", **params)
    assert got == want
    assert sum(size for size, _ in want.values()) > 0
    assert sum(back for (_, n), (_, back) in want.items() if n > 0) > 0


# -- the daily rollup gives identical results --------------------------------------------------


def rollup_of(ev: pd.DataFrame, tz: str) -> pd.DataFrame:
    """The daily per-customer rollup (sources.py layout), computed with pandas."""
    ev = ev.copy()
    local = ev.occurred_at.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    ev["day"] = local.dt.date
    ev["type"] = ev.event.map(event_type)
    base = ev.groupby(["customer_id", "day"]).agg(
        events=("event", "size"), value_sum=("value", "sum")
    )
    counts = ev.pivot_table(
        index=["customer_id", "day"], columns="type", values="value", aggfunc="size", fill_value=0
    )
    counts.columns = [f"n_{c}" for c in counts.columns]
    out = base.join(counts).reset_index()
    for col in counts.columns:
        out[col] = out[col].astype("int64")
    return out


ROLLUP_CASES = [
    {"period": "month"},
    {"period": "month", "cohort": "recurring", "returning": "on_or_after", "by": ["industry"]},
    {"period": "week", "start_event": "login", "return_event": "report_created"},
    {"period": "day", "start_event": "API Call", "filters": {"tag": "vip"}},
    {"period": "week", "return_event": "no_such_event"},
]


@pytest.mark.parametrize("partial", [False, True], ids=["compacted", "partial"])
@pytest.mark.parametrize("case", ROLLUP_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_rollup_and_raw_events_agree(duckdb_con, case, partial) -> None:
    data = dataset_frames()
    raw = Sources.from_frames(duckdb_con, data, timezone="Europe/Berlin", prefix="kw_raw_")
    ev = data["events"]
    if partial:  # a customer-day spread over several rows, some types missing from a part
        rollup = pd.concat(
            [rollup_of(ev.iloc[::2], "Europe/Berlin"), rollup_of(ev.iloc[1::2], "Europe/Berlin")]
        )
    else:
        rollup = rollup_of(ev, "Europe/Berlin")
    with_rollup = Sources.from_frames(
        duckdb_con,
        {**data, "rollup": rollup},
        timezone="Europe/Berlin",
        prefix="kw_rolled_",
    )
    assert with_rollup.has_rollup
    # prove the rollup is what is read: without events the answer must not change
    with_rollup.tables["events"] = with_rollup.events.limit(0)
    params = {**_window(case["period"]), **case}
    want = run(raw, **params)
    assert want.cohort_size.sum() > 0
    pd.testing.assert_frame_equal(run(with_rollup, **params), want, check_dtype=False)


def test_rollup_in_another_zone_or_users_fall_back_to_raw_events(duckdb_con) -> None:
    data = dataset_frames()
    raw = Sources.from_frames(duckdb_con, data, timezone="Europe/Berlin", prefix="kw_raw_")
    src = Sources.from_frames(
        duckdb_con,
        {**data, "rollup": rollup_of(data["events"], "UTC")},
        timezone="Europe/Berlin",
        prefix="kw_utc_rolled_",
    )
    src.extra["rollup_timezone"] = "UTC"
    params = {"start": date(2025, 9, 1), "end": date(2026, 1, 5), "period": "week"}
    pd.testing.assert_frame_equal(run(src, **params), run(raw, **params), check_dtype=False)
    src.extra["rollup_timezone"] = "Europe/Berlin"
    src.tables["rollup"] = src.rollup.limit(0)  # users never read the rollup
    pd.testing.assert_frame_equal(
        run(src, **params, unit="user"), run(raw, **params, unit="user"), check_dtype=False
    )


# -- other backends with non-default parameters ------------------------------------------------

BACKEND_CASES = [
    {"period": "week", "cohort": "recurring", "returning": "on_or_after", "by": ["industry"]},
    {"period": "day", "start_event": "login", "return_event": "export", "unit": "user"},
    {"period": "month", "start_event": "api-call", "max_periods": 3, "filters": {"tag": "vip"}},
]


def _backend_run(con, case: dict) -> pd.DataFrame:
    src = Sources.from_frames(con, dataset_frames(), timezone="Europe/Berlin", prefix="kw_erb_")
    out = run(src, **_window(case["period"]), **case)
    out["cohort_start"] = pd.to_datetime(out.cohort_start).astype("datetime64[us]")
    keys = [*case.get("by", []), "cohort_start", "period_offset"]
    return out.sort_values(keys).reset_index(drop=True)


@pytest.mark.postgres
@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_postgres_matches_duckdb(duckdb_con, pg_ibis_con, case) -> None:
    want = _backend_run(duckdb_con, case)
    pd.testing.assert_frame_equal(_backend_run(pg_ibis_con, case), want, check_dtype=False)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_pyspark_matches_duckdb(duckdb_con, spark_con, case) -> None:
    want = _backend_run(duckdb_con, case)
    pd.testing.assert_frame_equal(_backend_run(spark_con, case), want, check_dtype=False)
