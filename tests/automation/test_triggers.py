"""Each trigger on hand-built data (SQLite and PostgreSQL): who it hits, why, which occurrence."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from keepwell.automation import service
from keepwell.automation.triggers import next_renewal
from keepwell.automation.usage import usage_features
from keepwell.billing.models import BillingPeriod, InvoiceStatus, Subscription
from keepwell.customers.models import CustomerStatus
from keepwell.events.store import EventStore
from keepwell.health.models import HealthScore
from keepwell.risk.models import RiskScore
from keepwell.surveys.models import SurveyKind, SurveyResponse
from tests.factories import at, make_customer, make_invoice, make_subscription


def _hits(db_session, settings, trigger: str, params: dict, now: datetime):
    """(customer name, dedup key, reason) the rule would fire for, from a dry run."""
    name = f"rule {trigger} {sorted(params.items())}"
    service.create_rule(
        db_session=db_session,
        definition={
            "name": name[:120],
            "trigger": trigger,
            "params": params,
            "actions": [{"type": "add_tag", "tag": "flagged"}],
        },
    )
    report = service.run(
        db_session=db_session, settings=settings, now=now, dry_run=True, rule=name[:120]
    )
    assert report.rule_errors == {}
    return sorted((f.customer_name, f.dedup_key, f.reason) for f in report.firings)


def test_invoice_overdue(db_session, auto_settings):
    a = make_customer(db_session, name="A")
    b = make_customer(db_session, name="B")
    c = make_customer(db_session, name="C")
    late = make_invoice(
        db_session, a, external_id="in_late", due_at=at(2026, 3, 1), status=InvoiceStatus.overdue
    )
    make_invoice(db_session, b, due_at=at(2026, 3, 8), status=InvoiceStatus.open)  # 2 days only
    make_invoice(  # paid: not overdue
        db_session, c, due_at=at(2026, 3, 1), paid_at=at(2026, 3, 9), status=InvoiceStatus.paid
    )
    hits = _hits(db_session, auto_settings, "invoice_overdue", {"days": 7}, at(2026, 3, 10))
    assert hits == [
        ("A", f"{a.id}:invoice:{late.id}:overdue", "invoice in_late ($49.00) is 9 days overdue")
    ]


def test_payment_failed_within_days(db_session, auto_settings):
    a = make_customer(db_session, name="A")
    b = make_customer(db_session, name="B")
    recent = make_invoice(
        db_session,
        a,
        external_id="in_f",
        issued_at=at(2026, 3, 5),
        status=InvoiceStatus.failed,
        failure_reason="card declined",
    )
    make_invoice(db_session, b, issued_at=at(2026, 1, 5), status=InvoiceStatus.failed)  # too old
    hits = _hits(db_session, auto_settings, "payment_failed", {"within_days": 30}, at(2026, 3, 10))
    assert hits == [
        (
            "A",
            f"{a.id}:invoice:{recent.id}:failed",
            "payment of invoice in_f ($49.00) failed: card declined",
        )
    ]


def _risk(db_session, customer, probability, scored_at):
    row = RiskScore(
        customer_id=customer.id,
        scored_at=scored_at,
        as_of=scored_at,
        model_version="t",
        probability=probability,
        band="high" if probability >= 0.6 else "low",
    )
    db_session.add(row)
    db_session.flush()
    return row


def test_risk_crossed_compares_latest_with_previous(db_session, auto_settings):
    up = make_customer(db_session, name="Up")
    stays = make_customer(db_session, name="Stays")
    first = make_customer(db_session, name="First")
    down = make_customer(db_session, name="Down")
    _risk(db_session, up, 0.40, at(2026, 3, 1))
    crossed = _risk(db_session, up, 0.70, at(2026, 3, 8))
    _risk(db_session, stays, 0.65, at(2026, 3, 1))  # already above: no new crossing
    _risk(db_session, stays, 0.80, at(2026, 3, 8))
    only = _risk(db_session, first, 0.90, at(2026, 3, 8))  # no previous score: counts
    _risk(db_session, down, 0.70, at(2026, 3, 1))
    _risk(db_session, down, 0.20, at(2026, 3, 8))
    _risk(db_session, down, 0.95, at(2026, 3, 20))  # scored after "now": ignored
    hits = _hits(db_session, auto_settings, "risk_crossed", {"threshold": 0.6}, at(2026, 3, 10))
    assert hits == [
        ("First", f"{first.id}:risk:{only.id}", "churn risk rose to 90%, at or above 60%"),
        ("Up", f"{up.id}:risk:{crossed.id}", "churn risk rose to 70% (was 40%), at or above 60%"),
    ]


def test_health_turned_red(db_session, auto_settings):
    turned = make_customer(db_session, name="Turned")
    still = make_customer(db_session, name="Still")
    for customer, bands in ((turned, ["green", "yellow", "red"]), (still, ["red", "red"])):
        for day, band in enumerate(bands, start=1):
            row = HealthScore(
                customer_id=customer.id,
                scored_at=at(2026, 3, day),
                as_of=at(2026, 3, day),
                score=20.0,
                band=band,
            )
            db_session.add(row)
    db_session.flush()
    hits = _hits(db_session, auto_settings, "health_red", {}, at(2026, 3, 10))
    assert [(name, reason) for name, _, reason in hits] == [
        ("Turned", "health turned red (was yellow)")
    ]


def test_nps_detractor(db_session, auto_settings):
    a = make_customer(db_session, name="A")
    b = make_customer(db_session, name="B")
    rows = []
    for n, (customer, score, day) in enumerate(((a, 3, 5), (a, 9, 6), (b, 7, 6), (b, 1, 1))):
        resp = SurveyResponse(
            external_id=f"nps_{n}",
            customer_id=customer.id,
            kind=SurveyKind.nps,
            score=score,
            comment="too slow" if score == 3 else None,
            responded_at=at(2026, 3 if day > 1 else 1, day),
        )
        db_session.add(resp)
        rows.append(resp)
    db_session.flush()
    hits = _hits(db_session, auto_settings, "nps_detractor", {}, at(2026, 3, 10))
    assert hits == [("A", f"{a.id}:survey:{rows[0].id}", "NPS answer 3: “too slow”")]


def test_renewal_in(db_session, auto_settings):
    yearly = make_customer(db_session, name="Yearly")
    far = make_customer(db_session, name="Far")
    monthly = make_customer(db_session, name="Monthly")
    ending = make_customer(db_session, name="Ending")
    sub = make_subscription(
        db_session, yearly, started_at=at(2025, 4, 1), billing_period=BillingPeriod.year
    )
    make_subscription(db_session, far, started_at=at(2025, 9, 1), billing_period=BillingPeriod.year)
    make_subscription(db_session, monthly, started_at=at(2026, 1, 15))
    make_subscription(  # ends at the period end: no renewal
        db_session,
        ending,
        started_at=at(2025, 4, 1),
        ended_at=at(2026, 4, 1),
        billing_period=BillingPeriod.year,
    )
    hits = _hits(db_session, auto_settings, "renewal_in", {"days": 30}, at(2026, 3, 10))
    assert hits == [
        (
            "Yearly",
            f"{yearly.id}:renewal:{sub.id}:2026-04-01",
            "pro renews on 2026-04-01 (in 22 days)",
        )
    ]
    both = _hits(
        db_session,
        auto_settings,
        "renewal_in",
        {"days": 7, "billing_periods": ["month", "year"]},
        at(2026, 3, 10),
    )
    assert [name for name, _, _ in both] == ["Monthly"]  # renews 2026-03-15


@pytest.mark.parametrize(
    ("started", "period", "now", "expected"),
    [
        (at(2025, 4, 1), "year", at(2026, 3, 10), at(2026, 4, 1)),
        (at(2025, 4, 1), "year", at(2026, 4, 1), at(2027, 4, 1)),  # renewal instant is past
        (at(2026, 1, 31), "month", at(2026, 2, 10), at(2026, 2, 28)),  # month end clamps
        (at(2026, 1, 31), "month", at(2026, 3, 1), at(2026, 3, 31)),
        (at(2026, 1, 1), "quarter", at(2026, 3, 31), at(2026, 4, 1)),
    ],
)
def test_next_renewal(started, period, now, expected):
    sub = Subscription(started_at=started, billing_period=BillingPeriod(period))
    assert next_renewal(sub, now) == expected


def _events(settings, rows):
    table = pa.table(
        {
            "customer_id": [r[0] for r in rows],
            "event": ["login"] * len(rows),
            "occurred_at": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )
    EventStore.from_settings(settings).append(table)


def test_usage_drop_and_no_activity(db_session, auto_settings):
    # now = 2026-03-01 12:00 UTC: last 28 days = Feb 1..28, previous 28 = Jan 4..31
    now = at(2026, 3, 1, 12)
    drop = make_customer(db_session, name="Drop", external_id="c_drop")
    steady = make_customer(db_session, name="Steady", external_id="c_steady")
    small = make_customer(db_session, name="Small", external_id="c_small")
    silent = make_customer(db_session, name="Silent", external_id="c_silent")
    churned = make_customer(
        db_session, name="Gone", external_id="c_gone", status=CustomerStatus.churned
    )
    for c in (drop, steady, small, silent):
        make_subscription(db_session, c, started_at=at(2025, 12, 1))
    make_subscription(db_session, churned, started_at=at(2025, 12, 1), ended_at=at(2026, 1, 1))

    def day(d, month=2):
        return datetime(2026, month, d, 10, tzinfo=UTC)

    rows = [("c_drop", day(10, 1))] * 20 + [("c_drop", day(10))] * 5  # 20 -> 5: -75%
    rows += [("c_steady", day(10, 1))] * 10 + [("c_steady", day(27))] * 9  # -10%
    rows += [("c_small", day(10, 1))] * 4  # -100% but only 4 events before
    rows += [("c_gone", day(10, 1))] * 30  # not a customer any more
    _events(auto_settings, rows)

    drops = _hits(db_session, auto_settings, "usage_drop", {"percent": 50}, now)
    block = (datetime(2026, 3, 1).date() - datetime(1970, 1, 1).date()).days // 28
    assert drops == [
        (
            "Drop",
            f"{drop.id}:usage_drop:{block}",
            "usage fell 75% in the last 28 days (5 events vs 20 in the 28 days before)",
        )
    ]
    idle = _hits(db_session, auto_settings, "no_activity", {"days": 14}, now)
    assert idle == [
        (
            "Drop",
            f"{drop.id}:no_activity:2026-02-10",
            "no activity for 19 days (last active 2026-02-10)",
        ),
        (
            "Silent",
            f"{silent.id}:no_activity:never",
            "no activity since becoming a customer 90 days ago",
        ),
        (
            "Small",
            f"{small.id}:no_activity:2026-01-10",
            "no activity for 50 days (last active 2026-01-10)",
        ),
    ]
    # the daily rollup (used by default) and the raw events give the same features
    raw = usage_features(db_session=db_session, settings=auto_settings, now=now, rollup=False)
    assert raw == usage_features(db_session=db_session, settings=auto_settings, now=now)
    assert raw[drop.id]["events_pct_change"] == -75.0 and raw[steady.id]["events_28"] == 9


def test_segment_entered(db_session, auto_settings):
    segments = pytest.importorskip("keepwell.segments.models")
    a = make_customer(db_session, name="A")
    b = make_customer(db_session, name="B")
    seg = segments.Segment(name="at risk", filter_text="risk >= 0.6")
    db_session.add(seg)
    db_session.flush()
    change = segments.SegmentMembershipChange(
        segment_id=seg.id, customer_id=a.id, change="entered", at=at(2026, 3, 8)
    )
    db_session.add_all(
        [
            change,
            segments.SegmentMembershipChange(
                segment_id=seg.id, customer_id=b.id, change="entered", at=at(2026, 2, 1)
            ),
            segments.SegmentMembershipChange(
                segment_id=seg.id, customer_id=b.id, change="left", at=at(2026, 3, 9)
            ),
        ]
    )
    db_session.flush()
    hits = _hits(
        db_session, auto_settings, "segment_entered", {"segment": "at risk"}, at(2026, 3, 10)
    )
    assert hits == [("A", f"{a.id}:segment:{change.id}", "entered segment 'at risk'")]
