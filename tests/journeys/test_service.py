"""Journeys: timing with an injected now, exits, unsubscribes, triggers, retries, defaults."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlalchemy import func, select

from keepwell.automation import service as automation
from keepwell.billing.models import BillingPeriod
from keepwell.campaigns import service as campaigns
from keepwell.campaigns.service import create_template
from keepwell.customers.models import CustomerStatus
from keepwell.email.models import EmailMessage
from keepwell.email.service import suppress
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.events.store import EventStore
from keepwell.journeys import service
from keepwell.journeys.defaults import DEFAULT_JOURNEYS, DEFAULT_TEMPLATES, install_defaults
from keepwell.journeys.models import JourneyEnrollment, JourneyStepRun
from keepwell.tasks.models import Task
from keepwell.timeline.models import TimelineEntry
from tests.automation.receiver import Receiver
from tests.factories import at, make_customer, make_subscription


@pytest.fixture
def templates(db_session):
    for name in ("welcome", "tips"):
        create_template(
            db_session=db_session,
            name=name,
            subject=f"{name} {{{{ customer.name }}}}",
            html=f"<p>{name}</p>",
        )


def _onboarding(db_session, **extra):
    return service.create_journey(
        db_session=db_session,
        definition={
            "name": "Onboarding",
            "steps": [
                {"kind": "send_email", "template": "welcome"},
                {"kind": "wait", "days": 7},
                {"kind": "send_email", "template": "tips"},
                {"kind": "create_task", "title": "Check in with {{ customer.name }}"},
            ],
            **extra,
        },
    )


def _subjects(db_session) -> list[str]:
    return list(db_session.scalars(select(EmailMessage.subject).order_by(EmailMessage.id)))


def _advance(db_session, settings, now, **kw):
    return service.advance(db_session=db_session, settings=settings, now=now, **kw)


def test_steps_follow_the_clock(db_session, auto_settings, templates):
    journey = _onboarding(db_session)
    ann = make_customer(db_session, name="Ann", email="ann@example.com")
    enrollment = service.enrol(
        db_session=db_session,
        journey="Onboarding",
        customer_id=ann.id,
        reason="signed up",
        now=at(2026, 3, 1, 9),
    )
    assert enrollment.position == 0 and enrollment.due_at == at(2026, 3, 1, 9)
    # a second enrolment is refused (None), also for the journey object
    assert (
        service.enrol(db_session=db_session, journey=journey, customer_id=ann.id, reason="x")
        is None
    )

    report = _advance(db_session, auto_settings, at(2026, 3, 1, 10))
    assert [(s.position, s.kind, s.status) for s in report.steps] == [
        (0, "send_email", "done"),
        (1, "wait", "waiting"),
    ]
    assert _subjects(db_session) == ["welcome Ann"]
    assert enrollment.due_at == at(2026, 3, 8, 10) and enrollment.position == 2

    # idempotent: runs before the wait is over do nothing
    assert _advance(db_session, auto_settings, at(2026, 3, 1, 10)).did_nothing
    assert _advance(db_session, auto_settings, at(2026, 3, 8, 9, 59)).did_nothing
    assert _subjects(db_session) == ["welcome Ann"]

    report = _advance(db_session, auto_settings, at(2026, 3, 8, 10))
    assert [(s.position, s.status) for s in report.steps] == [(2, "done"), (3, "done")]
    assert report.completed == [("Onboarding", ann.id)]
    assert _subjects(db_session) == ["welcome Ann", "tips Ann"]
    assert db_session.scalars(select(Task.title)).all() == ["Check in with Ann"]
    assert enrollment.status == "completed" and enrollment.finished_at == at(2026, 3, 8, 10)
    runs = service.step_runs(db_session=db_session, enrollment=enrollment)
    assert [(r.position, r.status) for r in runs] == [
        (0, "done"),
        (1, "done"),
        (2, "done"),
        (3, "done"),
    ]
    assert _advance(db_session, auto_settings, at(2026, 4, 1)).did_nothing
    titles = db_session.scalars(
        select(TimelineEntry.title)
        .where(TimelineEntry.kind == "journey")
        .order_by(TimelineEntry.id)
    ).all()
    assert titles == ["Entered journey Onboarding: signed up", "Completed journey Onboarding"]


def test_unsubscribed_customer_gets_no_email_but_the_task(db_session, auto_settings, templates):
    _onboarding(db_session)
    bo = make_customer(db_session, name="Bo", email="bo@example.com")
    suppress(db_session=db_session, address="bo@example.com", reason="unsubscribed")
    service.enrol(
        db_session=db_session,
        journey="Onboarding",
        customer_id=bo.id,
        reason="r",
        now=at(2026, 3, 1),
    )
    _advance(db_session, auto_settings, at(2026, 3, 1))
    report = _advance(db_session, auto_settings, at(2026, 3, 8))
    assert [(s.kind, s.status) for s in report.steps] == [
        ("send_email", "skipped"),
        ("create_task", "done"),
    ]
    assert _subjects(db_session) == []
    assert db_session.scalars(select(Task.title)).all() == ["Check in with Bo"]


@pytest.mark.parametrize(
    ("condition", "change", "reason"),
    [
        ({"kind": "churned"}, "churn", "churned"),
        ({"kind": "became_paying"}, "pay", "became paying"),
        ({"kind": "unsubscribed"}, "unsubscribe", "unsubscribed"),
        (
            {"kind": "filter", "filter": 'industry = "travel"'},
            "travel",
            "matches 'industry = \"travel\"'",
        ),
    ],
)
def test_exit_conditions(db_session, auto_settings, templates, condition, change, reason):
    _onboarding(db_session, exit_conditions=[condition])
    cy = make_customer(db_session, name="Cy", email="cy@example.com")
    enrollment = service.enrol(
        db_session=db_session,
        journey="Onboarding",
        customer_id=cy.id,
        reason="r",
        now=at(2026, 3, 1),
    )
    _advance(db_session, auto_settings, at(2026, 3, 1))
    assert enrollment.status == "active"
    if change == "churn":
        cy.status = CustomerStatus.churned
    elif change == "pay":
        make_subscription(db_session, cy, started_at=at(2026, 3, 3))
    elif change == "unsubscribe":
        suppress(db_session=db_session, address="cy@example.com", reason="unsubscribed")
    else:
        cy.industry = "travel"
    db_session.flush()
    report = _advance(db_session, auto_settings, at(2026, 3, 8))
    assert report.exited == [("Onboarding", cy.id, reason)] and report.steps == []
    assert enrollment.status == "exited" and enrollment.exit_reason == reason
    assert _subjects(db_session) == ["welcome Cy"]


def test_customer_without_address_skips_email_steps(db_session, auto_settings, templates):
    _onboarding(db_session)
    nomail = make_customer(db_session, name="No mail", email=None)
    service.enrol(
        db_session=db_session, journey="Onboarding", customer_id=nomail.id, reason="r",
        now=at(2026, 3, 1),
    )  # fmt: skip
    report = _advance(db_session, auto_settings, at(2026, 3, 1))
    assert [(s.kind, s.status, s.detail) for s in report.steps] == [
        ("send_email", "skipped", "no e-mail address"),
        ("wait", "waiting", "until 2026-03-08 00:00 UTC"),
    ]


def test_failed_step_is_retried_and_the_journey_resumes(db_session, auto_settings):
    flaky = Receiver(statuses=[500, 200]).start()
    try:
        service.create_journey(
            db_session=db_session,
            definition={
                "name": "Hooks",
                "steps": [
                    {"kind": "webhook", "url": flaky.url, "retries": 0},
                    {"kind": "add_tag", "tag": "hooked"},
                ],
            },
        )
        di = make_customer(db_session, name="Di")
        enrollment = service.enrol(
            db_session=db_session,
            journey="Hooks",
            customer_id=di.id,
            reason="r",
            now=at(2026, 3, 1),
        )
        first = _advance(db_session, auto_settings, at(2026, 3, 1))
        assert [(s.position, s.status) for s in first.steps] == [(0, "failed")]
        assert "HTTP 500" in first.steps[0].detail and enrollment.position == 0
        second = _advance(db_session, auto_settings, at(2026, 3, 1, 1))
        assert [(s.position, s.status) for s in second.steps] == [(0, "done"), (1, "done")]
        run = db_session.scalars(select(JourneyStepRun).where(JourneyStepRun.position == 0)).one()
        assert (run.attempts, run.status) == (2, "done")
        assert enrollment.status == "completed" and len(flaky.requests) == 2
        assert flaky.requests[0].headers["Keepwell-Delivery"] == f"journey:{enrollment.id}:0"
    finally:
        flaky.stop()


def test_dry_run_writes_nothing(db_session, auto_settings, templates):
    _onboarding(db_session)
    ed = make_customer(db_session, name="Ed", email="ed@example.com")
    service.enrol(
        db_session=db_session,
        journey="Onboarding",
        customer_id=ed.id,
        reason="r",
        now=at(2026, 3, 1),
    )
    runs = db_session.scalar(select(func.count()).select_from(JourneyStepRun))
    report = _advance(db_session, auto_settings, at(2026, 3, 1), dry_run=True)
    assert [(s.kind, s.status) for s in report.steps] == [("send_email", "would run")]
    assert db_session.scalar(select(func.count()).select_from(JourneyStepRun)) == runs
    assert _subjects(db_session) == []


def test_event_trigger_enrols_once(db_session, auto_settings, templates):
    _onboarding(db_session, trigger="event", trigger_value="signup")
    fi = make_customer(db_session, name="Fi", email="fi@example.com", external_id="c_fi")
    gil = make_customer(db_session, name="Gil", email="gil@example.com", external_id="c_gil")
    EventStore.from_settings(auto_settings).append(
        pa.table(
            {
                "customer_id": ["c_fi", "c_gil", "c_unknown", "c_fi"],
                "event": ["signup", "login", "signup", "signup"],
                "occurred_at": pa.array(
                    [at(2026, 3, 1, 8), at(2026, 3, 1, 8), at(2026, 3, 1, 8), at(2026, 3, 1, 9)],
                    pa.timestamp("us", tz="UTC"),
                ),
            }
        )
    )
    preview = _advance(db_session, auto_settings, at(2026, 3, 1, 10), dry_run=True)
    assert preview.enrolled == [("Onboarding", fi.id, "event 'signup' at 2026-03-01 08:00 UTC")]
    report = _advance(db_session, auto_settings, at(2026, 3, 1, 10))
    assert report.enrolled == preview.enrolled
    assert [(s.customer_id, s.kind, s.status) for s in report.steps] == [
        (fi.id, "send_email", "done"),
        (fi.id, "wait", "waiting"),
    ]
    assert _advance(db_session, auto_settings, at(2026, 3, 1, 11)).did_nothing
    # an event imported late (it happened before the last run) still enrols
    EventStore.from_settings(auto_settings).append(
        pa.table(
            {
                "customer_id": ["c_gil"],
                "event": ["signup"],
                "occurred_at": pa.array([at(2026, 2, 27)], pa.timestamp("us", tz="UTC")),
            }
        )
    )
    late = _advance(db_session, auto_settings, at(2026, 3, 1, 12))
    assert [(j, c) for j, c, _ in late.enrolled] == [("Onboarding", gil.id)]


def test_segment_trigger_and_enrolment_by_a_rule(db_session, auto_settings, templates):
    from keepwell.segments.service import create_segment, refresh

    _onboarding(db_session, trigger="segment", trigger_value="Travel")
    travel = create_segment(db_session=db_session, name="Travel", filter_text='industry = "travel"')
    hal = make_customer(db_session, name="Hal", email="hal@example.com", industry="travel")
    refresh(db_session=db_session, segment=travel, now=at(2026, 3, 1))
    report = _advance(db_session, auto_settings, at(2026, 3, 1, 1))
    assert report.enrolled == [("Onboarding", hal.id, "entered segment 'Travel'")]

    # a rule's "enrol" action (the renewal rule from the defaults)
    install_defaults(db_session=db_session)
    iva = make_customer(db_session, name="Iva", email="iva@example.com")
    make_subscription(db_session, iva, started_at=at(2025, 4, 1), billing_period=BillingPeriod.year)
    rule = automation.get_rule_or_raise(db_session=db_session, name_or_id="Renewal in 30 days")
    automation.set_enabled(db_session=db_session, rule=rule, enabled=True)
    run = automation.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 10))
    assert [f.customer_name for f in run.firings] == ["Iva"]
    enrollment = db_session.scalars(
        select(JourneyEnrollment).where(JourneyEnrollment.customer_id == iva.id)
    ).one()
    # the same run advanced the journey: the 30-day e-mail (a default template) was queued and
    # the 7-days-before wait is computed from the renewal date (2026-04-01 - 7 days)
    assert enrollment.position == 2 and enrollment.due_at == at(2026, 3, 25)
    queued = db_session.scalars(select(EmailMessage).where(EmailMessage.customer_id == iva.id))
    assert [m.subject for m in queued] == ["Your pro renews in 30 days"]


def test_enrol_errors(db_session, auto_settings):
    with pytest.raises(NotFound, match="no journey 'Nope'"):
        service.enrol(db_session=db_session, journey="Nope", customer_id=1, reason="r")
    service.create_journey(
        db_session=db_session,
        definition={"name": "J", "enabled": False, "steps": [{"kind": "wait", "days": 1}]},
    )
    with pytest.raises(NotFound, match="no customer with id 999999"):
        service.enrol(db_session=db_session, journey="J", customer_id=999999, reason="r")
    jo = make_customer(db_session)
    assert service.enrol(db_session=db_session, journey="J", customer_id=jo.id, reason="r") is None


def test_bad_journey_definitions_name_the_field(db_session):
    ok = {"name": "J", "steps": [{"kind": "wait", "days": 1}]}
    cases = [
        ({**ok, "steps": []}, "field 'steps'"),
        ({**ok, "steps": [{"kind": "sms"}]}, "field 'steps[0].kind': unknown step kind 'sms'"),
        ({**ok, "steps": [{"kind": "wait"}]}, "field 'steps[0]': a wait needs days, hours"),
        ({**ok, "steps": [{"kind": "wait", "days": -1}]}, "field 'steps[0].days'"),
        ({**ok, "steps": [{"kind": "wait", "weeks": 1}]}, "field 'steps[0].weeks': unknown field"),
        (
            {**ok, "steps": [{"kind": "wait", "days": 1, "before_renewal_days": 7}]},
            "not both",
        ),
        (
            {**ok, "steps": [{"kind": "webhook", "url": "javascript:alert(1)"}]},
            "field 'steps[0].url'",
        ),
        (
            {**ok, "steps": [{"kind": "create_task", "title": "{{ nope }}"}]},
            "field 'steps[0].title': unknown template variable 'nope'",
        ),
        ({**ok, "trigger": "event"}, "needs trigger_value"),
        ({**ok, "trigger": "cron"}, "field 'trigger'"),
        ({**ok, "exit_conditions": [{"kind": "bored"}]}, "field 'exit_conditions[0].kind'"),
        ({**ok, "exit_conditions": [{"kind": "filter"}]}, "needs filter text"),
        (
            {**ok, "exit_conditions": [{"kind": "filter", "filter": "mrr >>= 3"}]},
            "field 'exit_conditions[0].filter'",
        ),
        ({"steps": ok["steps"]}, "field 'name'"),
    ]
    for definition, message in cases:
        with pytest.raises(InvalidInput) as info:
            service.create_journey(db_session=db_session, definition=definition)
        assert message in str(info.value), (definition, str(info.value))
    service.create_journey(db_session=db_session, definition=ok)
    with pytest.raises(AlreadyExists):
        service.create_journey(db_session=db_session, definition=ok)


def test_install_defaults_is_idempotent(db_session):
    created = install_defaults(db_session=db_session)
    assert created == [f"template {t}" for t in DEFAULT_TEMPLATES] + [
        j["name"] for j in DEFAULT_JOURNEYS
    ] + ["rule Renewal in 30 days (disabled)"]
    assert install_defaults(db_session=db_session) == []
    # every template a default journey sends exists (and renders: saved templates compiled)
    sent = {
        step["template"]
        for j in DEFAULT_JOURNEYS
        for step in j["steps"]
        if step.get("kind") == "send_email"
    }
    for name in sent:
        assert campaigns.get_template(db_session=db_session, name_or_id=name).name == name
    names = [j.name for j in service.list_journeys(db_session=db_session)]
    assert names == sorted(j["name"] for j in DEFAULT_JOURNEYS)
    win_back = service.get_journey_or_raise(db_session=db_session, name_or_id="Win-back churned")
    assert [s.kind for s in win_back.steps] == [
        "send_email",
        "wait",
        "send_email",
        "wait",
        "create_task",
    ]
    assert not automation.get_rule_or_raise(
        db_session=db_session, name_or_id="Renewal in 30 days"
    ).enabled
