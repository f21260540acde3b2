"""Observations: no feature sees the future, labels at the edges, censoring, the schedule."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pandas as pd
import pytest

from keepwell.errors import InvalidInput
from keepwell.metrics.sources import Sources
from keepwell.risk.dataset import (
    LABEL,
    build_observations,
    data_end,
    observation_dates,
    snapshot_features,
)
from tests.risk.conftest import subs, ts

END = datetime(2026, 6, 1)
"""The data is known up to here in the label tests (passed as known_until)."""


def customers(*ids: str, industry: str | None = "retail") -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": list(ids), "signup_at": [ts("2025-10-01")] * len(ids), "industry": industry}
    )


def events(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """(customer_id, event, occurred_at) rows."""
    return pd.DataFrame(
        [{"customer_id": c, "event": e, "occurred_at": ts(at), "value": 1.0} for c, e, at in rows]
    )


def business() -> dict[str, pd.DataFrame]:
    """Two customers using the product before and after 2026-03-01, with invoices, NPS and
    tickets on both sides of that date."""
    return {
        "customers": customers("a", "b"),
        "subscriptions": subs(("a", "2025-11-01", None, 9900), ("b", "2025-12-01", None, 2900)),
        "events": events(
            ("a", "login", "2026-01-05 10:00"),
            ("a", "export", "2026-02-20 10:00"),
            ("a", "login", "2026-02-28 23:59"),
            ("b", "login", "2026-02-10 09:00"),
            ("a", "login", "2026-03-01 00:00"),  # at the snapshot instant: not before it
            ("b", "export", "2026-03-15 12:00"),
        ),
        "invoices": pd.DataFrame(
            [
                {
                    "customer_id": "b",
                    "amount_minor": 2900,
                    "currency": "USD",
                    "issued_at": ts("2026-02-01"),
                    "status": "failed",
                },
                {
                    "customer_id": "b",
                    "amount_minor": 2900,
                    "currency": "USD",
                    "issued_at": ts("2026-03-01"),
                    "status": "failed",
                },
            ]
        ),
        "surveys": pd.DataFrame(
            [{"customer_id": "a", "kind": "nps", "score": 9, "responded_at": ts("2026-02-01")}]
        ),
        "tickets": pd.DataFrame(
            [{"customer_id": "b", "priority": "low", "opened_at": ts("2026-02-15")}]
        ),
    }


def after_the_date(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The same business with everything after 2026-03-01 00:00 changed: more events, new
    failed invoices, a detractor NPS, tickets, a cancellation, a new customer."""
    out = {k: v.copy() for k, v in frames.items()}
    out["events"] = pd.concat(
        [
            out["events"],
            events(
                *[("a", "login", f"2026-03-{d:02d} 10:00") for d in range(1, 28)],
                ("b", "report_created", "2026-03-02 10:00"),
                ("c", "login", "2026-03-03 10:00"),
            ),
        ],
        ignore_index=True,
    )
    out["invoices"] = pd.concat(
        [
            out["invoices"],
            pd.DataFrame(
                [
                    {
                        "customer_id": "a",
                        "amount_minor": 9900,
                        "currency": "USD",
                        "issued_at": ts("2026-03-01"),
                        "status": "failed",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    out["surveys"] = pd.concat(
        [
            out["surveys"],
            pd.DataFrame(
                [
                    {
                        "customer_id": "a",
                        "kind": "nps",
                        "score": 2,
                        "responded_at": ts("2026-03-01 00:00"),
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    out["tickets"] = pd.concat(
        [
            out["tickets"],
            pd.DataFrame([{"customer_id": "b", "priority": "high", "opened_at": ts("2026-03-20")}]),
        ],
        ignore_index=True,
    )
    out["subscriptions"] = subs(
        ("a", "2025-11-01", "2026-03-10", 9900),  # cancels after the date
        ("b", "2025-12-01", None, 2900),
        ("c", "2026-03-02", None, 9900),  # a customer who arrives after the date
    )
    out["customers"] = customers("a", "b", "c")
    return out


def observe(src, days, **kw):
    kw.setdefault("known_until", END)
    obs = build_observations(src, as_of=days, **kw)
    return obs.frame.set_index(["as_of", "customer_id"])


def test_features_ignore_everything_at_or_after_the_date(make_sources) -> None:
    day = date(2026, 3, 1)
    before = observe(make_sources(business()), [day])
    after = observe(make_sources(after_the_date(business())), [day])
    features = [c for c in before.columns if c not in (LABEL, "spell_ended_at")]
    pd.testing.assert_frame_equal(before[features], after[features], check_like=True)
    # the features are the ones we expect (so the comparison is not of two empty tables)
    a, b = before.loc[(day, "a")], before.loc[(day, "b")]
    assert a["days_since_last_event"] == 1 and a["n28_login"] == 1 and a["n28_export"] == 1
    assert a["last_nps_score"] == 9 and a["features_used_28"] == 2
    assert b["failed_invoices_90"] == 1 and b["tickets_28"] == 1 and b["mrr_minor"] == 2900
    # only the labels may change: a cancels on 2026-03-10
    assert before.loc[(day, "a"), LABEL] == 0 and after.loc[(day, "a"), LABEL] == 1


def label_business() -> dict[str, pd.DataFrame]:
    """Customers whose spells end at the edges of the 2026-03-01 observation (horizon 30)."""
    return {
        "customers": customers("soon", "edge", "late", "gap", "stays", "final", "tail"),
        "subscriptions": subs(
            ("soon", "2025-12-01", "2026-03-01 01:00", 100),  # 1 hour after the date
            ("edge", "2025-12-01", "2026-03-31 00:00", 100),  # exactly at the horizon's end
            ("late", "2025-12-01", "2026-04-01 00:00", 100),  # one day after the horizon
            ("gap", "2025-12-01", "2026-03-10", 100),  # comes back within the grace gap
            ("gap", "2026-03-15", None, 100),
            ("stays", "2025-12-01", None, 100),
            ("final", "2025-12-01", "2026-04-20", 100),  # churns in the last labelled window
            ("tail", "2025-12-01", "2026-05-28", 100),  # churns just before the data's end
        ),
    }


@pytest.fixture(scope="module")
def label_frame() -> pd.DataFrame:
    """Observations of :func:`label_business` on 2026-03-01, 04-01 and 05-01 (one query)."""
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    src = Sources.from_frames(con, label_business())
    days = [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]
    yield observe(src, days)
    con.disconnect()


@pytest.mark.parametrize(
    ("customer", "day", "label"),
    [
        ("soon", "2026-03-01", 1),  # churn right after the observation date
        ("edge", "2026-03-01", 1),  # end-exclusive: not active at as_of + 30 days
        ("late", "2026-03-01", 0),  # churn right after the horizon
        ("gap", "2026-03-01", 0),  # a 5-day gap is not churn
        ("stays", "2026-03-01", 0),
        ("final", "2026-03-01", 0),
        ("final", "2026-04-01", 1),  # the last labelled date keeps its churn (not dropped)
        ("tail", "2026-04-01", 0),  # churns after that date's horizon
        ("tail", "2026-05-01", None),  # horizon + grace pass the data's end: censored
        ("stays", "2026-05-01", None),  # censored too: never invented as "stayed"
    ],
)
def test_label_edges(label_frame, customer, day, label) -> None:
    value = label_frame.loc[(date.fromisoformat(day), customer), LABEL]
    assert (pd.isna(value) and label is None) or value == label


def test_censoring_boundary_and_labelled_view(make_sources) -> None:
    src = make_sources(label_business())
    # 2026-04-01 + 30 + 7 days = 2026-05-08: known exactly at that instant, not a second before
    known = build_observations(src, as_of=[date(2026, 4, 1)], known_until=datetime(2026, 5, 8))
    unknown = build_observations(
        src, as_of=[date(2026, 4, 1)], known_until=datetime(2026, 5, 7, 23, 59)
    )
    assert known.frame[LABEL].notna().all()
    assert unknown.frame[LABEL].isna().all()
    assert unknown.labelled.frame.empty
    with pytest.raises(InvalidInput, match="censored"):
        _ = unknown.y
    obs = build_observations(src, as_of=[date(2026, 3, 1), date(2026, 5, 1)], known_until=END)
    assert len(obs.labelled.frame) == 7 and obs.labelled.y.sum() == 2  # soon, edge
    assert set(obs.frame[obs.frame[LABEL].isna()]["as_of"]) == {date(2026, 5, 1)}


def test_only_active_customers_are_observed(label_frame) -> None:
    day, frame = date(2026, 4, 1), label_frame
    # soon and edge ended before; late ends at exactly 2026-04-01 00:00 (end-exclusive);
    # gap is active again
    assert sorted(c for d, c in frame.index if d == day) == ["final", "gap", "stays", "tail"]
    late = frame.loc[(date(2026, 3, 1), "late"), "spell_ended_at"]
    assert late == pd.Timestamp("2026-04-01")
    assert pd.isna(frame.loc[(day, "stays"), "spell_ended_at"])


def test_schedule_and_data_end(make_sources) -> None:
    src = make_sources(business())
    # latest recorded moment: the 2026-03-15 12:00 event (subscriptions are open-ended)
    assert data_end(src) == datetime(2026, 3, 15, 12, 0)
    assert observation_dates(src) == [
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    assert observation_dates(src, period="quarter", start=date(2025, 12, 15)) == [date(2026, 1, 1)]
    obs = build_observations(src, horizon_days=10, grace_days=0)
    assert obs.dates == observation_dates(src)
    # 2026-03-01 + 10 days <= 2026-03-15 12:00: labelled; every date is
    assert obs.frame[LABEL].notna().all() and obs.gap_days == 10
    assert list(obs.frame.columns[:2]) == ["customer_id", "as_of"]
    assert obs.features[-1] == "industry" and "customer_id" not in obs.features


def test_missing_category_and_snapshot(make_sources) -> None:
    frames = business()
    frames["customers"] = customers("a", "b", industry=None)
    src = make_sources(frames)
    snap = snapshot_features(src, as_of=date(2026, 3, 1), event_types=["login", "export", "x"])
    assert sorted(snap["customer_id"]) == ["a", "b"]
    assert set(snap["industry"]) == {"(none)"}
    assert {"n28_login", "n28_export", "n28_x"} <= set(snap.columns)
    assert LABEL not in snap.columns


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon_days": 0}, "horizon_days"),
        ({"window_days": -1}, "window_days"),
        ({"grace_days": -1}, "grace_days"),
        ({"start": date(2030, 1, 1)}, "start"),
    ],
)
def test_bad_settings_are_named(make_sources, kwargs, field) -> None:
    with pytest.raises(InvalidInput, match=field):
        build_observations(make_sources(business()), **kwargs)


def test_no_data_is_a_clear_error(make_sources) -> None:
    src = make_sources({})
    with pytest.raises(InvalidInput, match="no data"):
        data_end(src)
    with pytest.raises(InvalidInput, match="no customer is ever active"):
        observation_dates(src, until=END)
