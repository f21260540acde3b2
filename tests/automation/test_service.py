"""Rules end to end: firing, dedup over repeated runs, cooldown, dry run, retry, audit."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from keepwell.automation import service
from keepwell.automation.models import AlertFiring, AlertRule, Playbook
from keepwell.automation.webhooks import verify
from keepwell.billing.models import InvoiceStatus
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.journeys.models import JourneyEnrollment
from keepwell.timeline.models import TimelineEntry
from tests.automation.conftest import SECRET
from tests.automation.receiver import Receiver
from tests.factories import at, make_customer, make_invoice


def _failed_payment_rule(db_session, url: str, **extra):
    definition = {
        "name": "Payment failed",
        "trigger": "payment_failed",
        "params": {"within_days": 30},
        "actions": [{"type": "webhook", "url": url, "retries": 0}],
        **extra,
    }
    return service.create_rule(db_session=db_session, definition=definition)


def _count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def test_fires_once_per_occurrence_over_repeated_runs(db_session, auto_settings, receiver):
    alice = make_customer(db_session, name="Alice")
    inv = make_invoice(
        db_session, alice, issued_at=at(2026, 3, 1), status=InvoiceStatus.failed, external_id="in_A"
    )
    rule = _failed_payment_rule(db_session, receiver.url)

    first = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert [(f.customer_name, f.status) for f in first.firings] == [("Alice", "done")]
    assert first.firings[0].dedup_key == f"{alice.id}:invoice:{inv.id}:failed"
    assert "payment of invoice in_A ($49.00) failed" in first.firings[0].reason

    second = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2, 1))
    assert second.firings == [] and second.skipped_duplicate == 1 and second.did_nothing
    assert len(receiver.requests) == 1

    # the audit log: the firing with the action's result, and the customer's timeline
    firing = db_session.scalars(select(AlertFiring)).one()
    assert firing.rule_id == rule.id and firing.status == "done"
    assert firing.results[0]["status"] == "done"
    assert firing.results[0]["result"] == {"status_code": 200, "attempts": 1}
    entry = db_session.scalars(select(TimelineEntry).where(TimelineEntry.kind == "alert")).one()
    assert entry.customer_id == alice.id and entry.title.startswith("Alert: Payment failed")

    # a new occurrence (another failed invoice) fires again
    make_invoice(db_session, alice, issued_at=at(2026, 3, 5), status=InvoiceStatus.failed)
    third = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 6))
    assert len(third.firings) == 1 and third.skipped_duplicate == 1
    newest = service.history(db_session=db_session, rule=rule)[0]
    assert newest.reason.startswith("payment of invoice in_") and newest.fired_at == at(2026, 3, 6)


def test_cooldown_per_customer(db_session, auto_settings, receiver):
    bob = make_customer(db_session, name="Bob")
    make_invoice(db_session, bob, issued_at=at(2026, 3, 1), status=InvoiceStatus.failed)
    _failed_payment_rule(db_session, receiver.url, cooldown_days=7)
    assert (
        len(service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2)).firings)
        == 1
    )

    # a new occurrence 3 days later: still in the 7-day cooldown
    make_invoice(db_session, bob, issued_at=at(2026, 3, 4), status=InvoiceStatus.failed)
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 5))
    assert report.firings == [] and report.skipped_cooldown == 1
    # 7 days after the first firing the cooldown is over: it fires
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 9))
    assert len(report.firings) == 1 and report.skipped_duplicate == 1
    assert len(receiver.requests) == 2


def test_dry_run_lists_who_and_why_and_writes_nothing(db_session, auto_settings, receiver):
    carol = make_customer(db_session, name="Carol")
    make_invoice(db_session, carol, issued_at=at(2026, 3, 1), status=InvoiceStatus.failed)
    _failed_payment_rule(db_session, receiver.url)
    before = [_count(db_session, m) for m in (AlertFiring, TimelineEntry, AlertRule)]
    report = service.run(
        db_session=db_session, settings=auto_settings, now=at(2026, 3, 2), dry_run=True
    )
    assert [(f.customer_name, f.status) for f in report.firings] == [("Carol", "would fire")]
    assert "failed" in report.firings[0].reason
    assert [_count(db_session, m) for m in (AlertFiring, TimelineEntry, AlertRule)] == before
    assert receiver.requests == []
    # the real run afterwards fires
    assert (
        len(service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2)).firings)
        == 1
    )


def test_failed_action_is_retried_without_repeating_the_successful_one(db_session, auto_settings):
    dave = make_customer(db_session, name="Dave")
    make_invoice(db_session, dave, issued_at=at(2026, 3, 1), status=InvoiceStatus.failed)
    good, flaky = Receiver().start(), Receiver(statuses=[500, 200]).start()
    try:
        service.create_rule(
            db_session=db_session,
            definition={
                "name": "Payment failed",
                "trigger": "payment_failed",
                "actions": [
                    {"type": "webhook", "url": good.url, "retries": 0},
                    {"type": "webhook", "url": flaky.url, "retries": 0},
                ],
            },
        )
        first = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
        assert first.firings[0].status == "failed"
        assert "HTTP 500" in first.firings[0].errors[0]
        firing = db_session.scalars(select(AlertFiring)).one()
        assert [r["status"] for r in firing.results] == ["done", "failed"]

        second = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2, 1))
        assert [(r.customer_name, r.status) for r in second.retried] == [("Dave", "done")]
        assert second.firings == []
        db_session.refresh(firing)
        assert [r["status"] for r in firing.results] == ["done", "done"]
        assert [r["attempts"] for r in firing.results] == [1, 2]
        assert (len(good.requests), len(flaky.requests)) == (1, 2)
        # the same delivery id on the retry, so the receiver can deduplicate
        assert (
            flaky.requests[0].headers["Keepwell-Delivery"]
            == flaky.requests[1].headers["Keepwell-Delivery"]
        )
        third = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2, 2))
        assert third.did_nothing
    finally:
        good.stop()
        flaky.stop()


def test_action_gives_up_after_max_attempts(db_session, auto_settings):
    erin = make_customer(db_session, name="Erin")
    make_invoice(db_session, erin, issued_at=at(2026, 3, 1), status=InvoiceStatus.failed)
    down = Receiver(statuses=[503]).start()
    try:
        _failed_payment_rule(db_session, down.url)
        for hour in range(service.MAX_ATTEMPTS):
            service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2, hour))
        firing = db_session.scalars(select(AlertFiring)).one()
        assert firing.status == "gave_up" and firing.results[0]["attempts"] == service.MAX_ATTEMPTS
        last = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 3))
        assert last.did_nothing and len(down.requests) == service.MAX_ATTEMPTS
    finally:
        down.stop()


def test_webhook_body_is_signed_and_verifiable(db_session, auto_settings, receiver):
    fay = make_customer(db_session, name="Fay", email="fay@example.com")
    make_invoice(db_session, fay, issued_at=at(2026, 3, 1), status=InvoiceStatus.failed)
    _failed_payment_rule(db_session, receiver.url)
    service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    (req,) = receiver.requests
    header = req.headers["Keepwell-Signature"]
    assert verify(SECRET.encode(), header, req.body)
    assert not verify(b"another-secret-0123456789", header, req.body)
    assert not verify(SECRET.encode(), header, req.body + b" ")
    payload = json.loads(req.body)
    assert payload["event"] == "alert.fired" and payload["rule"] == "Payment failed"
    assert payload["customer"]["email"] == "fay@example.com"


def test_playbook_actions_run_for_a_rule(db_session, auto_settings, receiver):
    from keepwell.journeys.service import create_journey

    gus = make_customer(db_session, name="Gus")
    make_invoice(db_session, gus, issued_at=at(2026, 3, 1), status=InvoiceStatus.failed)
    create_journey(
        db_session=db_session,
        definition={"name": "Dunning", "steps": [{"kind": "wait", "days": 1}]},
    )
    service.create_playbook(
        db_session=db_session,
        name="Payment failed playbook",
        actions=[
            {"type": "enrol", "journey": "Dunning"},
            {"type": "webhook", "url": receiver.url},
        ],
    )
    service.create_rule(
        db_session=db_session,
        definition={
            "name": "Payment failed",
            "trigger": "payment_failed",
            "actions": [{"type": "playbook", "name": "Payment failed playbook"}],
        },
    )
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert report.firings[0].status == "done"
    enrollment = db_session.scalars(select(JourneyEnrollment)).one()
    assert enrollment.customer_id == gus.id and enrollment.reason.startswith("rule Payment failed")
    assert len(receiver.requests) == 1
    assert _count(db_session, Playbook) == 1


def test_disabled_rule_is_skipped_unless_named(db_session, auto_settings, receiver):
    hal = make_customer(db_session, name="Hal")
    make_invoice(db_session, hal, issued_at=at(2026, 3, 1), status=InvoiceStatus.failed)
    rule = _failed_payment_rule(db_session, receiver.url)
    service.set_enabled(db_session=db_session, rule=rule, enabled=False)
    assert (
        service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2)).firings == []
    )
    named = service.run(
        db_session=db_session, settings=auto_settings, now=at(2026, 3, 2), rule="Payment failed"
    )
    assert len(named.firings) == 1 and named.journeys is None
    with pytest.raises(NotFound, match="no alert rule 'nope'"):
        service.run(db_session=db_session, settings=auto_settings, rule="nope")


def test_bad_definitions_name_the_field(db_session):
    base = {
        "name": "R",
        "trigger": "no_activity",
        "params": {"days": 14},
        "actions": [{"type": "add_tag", "tag": "x"}],
    }
    cases = [
        ({**base, "trigger": "moon_phase"}, "field 'trigger': unknown trigger 'moon_phase'"),
        ({**base, "params": {"days": 0}}, "field 'params.days'"),
        ({**base, "params": {"dayz": 3}}, "field 'params.dayz': unknown field"),
        ({**base, "actions": []}, "field 'actions'"),
        ({**base, "actions": [{"type": "sms"}]}, "field 'actions[0]': unknown action type 'sms'"),
        (
            {**base, "actions": [{"type": "webhook", "url": "file:///etc/passwd"}]},
            "field 'actions[0].url'",
        ),
        (
            {**base, "actions": [{"type": "create_task", "title": "{{ customer.__class__ }"}]},
            "field 'actions[0].title': bad template syntax",
        ),
        (
            {**base, "actions": [{"type": "create_task", "title": "Hi {{ os.system }}"}]},
            "field 'actions[0].title': unknown template variable 'os'",
        ),
        (
            {**base, "actions": [{"type": "playbook", "name": "Missing"}]},
            "field 'actions[0].name': no playbook named 'Missing'",
        ),
        (
            {**base, "actions": [{"type": "enrol", "journey": "Missing"}]},
            "field 'actions[0].journey': no journey named 'Missing'",
        ),
        (
            {**base, "cooldown_days": -1, "actions": [{"type": "add_tag", "tag": "x"}]},
            "cooldown_days",
        ),
    ]
    for definition, message in cases:
        with pytest.raises(InvalidInput) as info:
            service.create_rule(db_session=db_session, definition=definition)
        assert message in str(info.value), (definition, str(info.value))
    assert _count(db_session, AlertRule) == 0
    ok = base
    service.create_rule(db_session=db_session, definition=ok)
    with pytest.raises(AlreadyExists):
        service.create_rule(db_session=db_session, definition=ok)
    with pytest.raises(InvalidInput, match="cannot use another playbook"):
        service.create_playbook(
            db_session=db_session, name="P", actions=[{"type": "playbook", "name": "Q"}]
        )


def test_naive_now_is_refused(db_session, auto_settings):
    from datetime import datetime

    with pytest.raises(InvalidInput, match="time-zone aware"):
        service.run(db_session=db_session, settings=auto_settings, now=datetime(2026, 3, 1))


@pytest.mark.parametrize("ref", [2**63, -(2**63) - 1, "9" * 20, "²", 2**63 - 1, "0"])
def test_an_id_beyond_bigint_is_not_found(db_session, ref):
    rule = service.create_rule(
        db_session=db_session,
        definition={
            "name": "Failed",
            "trigger": "payment_failed",
            "actions": [{"type": "add_tag", "tag": "dunning"}],
        },
    )
    playbook = service.create_playbook(
        db_session=db_session, name="P", actions=[{"type": "add_tag", "tag": "x"}]
    )
    assert service.get_rule(db_session=db_session, name_or_id=ref) is None
    assert service.get_playbook(db_session=db_session, name_or_id=ref) is None
    with pytest.raises(NotFound, match="no alert rule"):
        service.get_rule_or_raise(db_session=db_session, name_or_id=ref)
    assert service.get_rule(db_session=db_session, name_or_id=str(rule.id)) is rule
    assert service.get_playbook(db_session=db_session, name_or_id=playbook.id) is playbook
