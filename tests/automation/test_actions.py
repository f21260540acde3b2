"""Actions wired to the other domains: tasks, template e-mail, tags, journeys; webhooks."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from keepwell.automation import service, webhooks
from keepwell.billing.models import InvoiceStatus
from keepwell.campaigns.service import create_template
from keepwell.customers.models import Customer
from keepwell.email.models import EmailMessage
from keepwell.errors import InvalidInput
from keepwell.tasks.models import Task
from keepwell.users.models import StaffUser
from tests.factories import at, make_customer, make_invoice


def _rule(db_session, actions, **extra):
    return service.create_rule(
        db_session=db_session,
        definition={"name": "Failed", "trigger": "payment_failed", "actions": actions, **extra},
    )


def _failed_invoice(db_session, **customer):
    customer = make_customer(db_session, **customer)
    make_invoice(
        db_session,
        customer,
        external_id=f"in_{customer.external_id}",
        issued_at=at(2026, 3, 1),
        status=InvoiceStatus.failed,
    )
    return customer


def test_create_task_for_the_owner_with_templated_text(db_session, auto_settings):
    csm = StaffUser(email="csm@example.com", name="Casey")
    db_session.add(csm)
    db_session.flush()
    ann = _failed_invoice(db_session, name="Ann & Co", owner_id=csm.id, industry="travel")
    _rule(
        db_session,
        [
            {
                "type": "create_task",
                "title": "Call {{ customer.name }} ({{ customer.industry }})",
                "body": "Why: {{ reason }}. Rule: {{ rule }}.",
                "priority": "high",
                "due_in_days": 2,
            }
        ],
    )
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert report.firings[0].status == "done", report.firings[0].errors
    task = db_session.scalars(select(Task)).one()
    assert task.title == "Call Ann & Co (travel)"  # plain text: no HTML escaping
    assert (
        task.description
        == f"Why: payment of invoice in_{ann.external_id} ($49.00) failed. Rule: Failed."
    )
    assert (task.owner_id, task.customer_id, task.priority.value) == (csm.id, ann.id, "high")
    assert task.due_at == at(2026, 3, 4)
    # the second run creates no second task
    service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 3))
    assert len(db_session.scalars(select(Task)).all()) == 1


def test_send_template_email_is_queued_once(db_session, auto_settings):
    create_template(
        db_session=db_session,
        name="payment-failed",
        subject="About your payment, {{ customer.name }}",
        html="<p>Your last payment failed.</p>",
    )
    bea = _failed_invoice(db_session, name="Bea", email="bea@example.com")
    _rule(db_session, [{"type": "send_email", "template": "payment-failed"}])
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert report.firings[0].status == "done", report.firings[0].errors
    message = db_session.scalars(select(EmailMessage)).one()
    assert (message.customer_id, message.to_address) == (bea.id, "bea@example.com")
    assert message.subject == "About your payment, Bea" and message.kind == "alert"


def test_send_email_to_a_customer_without_address_is_a_no_op(db_session, auto_settings):
    create_template(db_session=db_session, name="pf", subject="Hi", html="<p>Hi</p>")
    _failed_invoice(db_session, name="Nomail", email=None)
    _rule(db_session, [{"type": "send_email", "template": "pf"}])
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert report.firings[0].status == "done"
    assert db_session.scalars(select(EmailMessage)).all() == []


def test_send_email_with_unknown_template_fails_and_is_recorded(db_session, auto_settings):
    _failed_invoice(db_session, name="Cid", email="cid@example.com")
    _rule(db_session, [{"type": "send_email", "template": "nope"}])
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert report.firings[0].status == "failed"
    assert "nope" in report.firings[0].errors[0]


def test_add_and_remove_tags(db_session, auto_settings):
    from keepwell.customers.tags import add_tag

    dot = _failed_invoice(db_session, name="Dot")
    add_tag(db_session=db_session, customer_id=dot.id, tag_name="healthy")
    _rule(
        db_session,
        [
            {"type": "add_tag", "tag": "payment-problem"},
            {"type": "remove_tag", "tag": "healthy"},
            {"type": "remove_tag", "tag": "never-existed"},
        ],
    )
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert report.firings[0].status == "done", report.firings[0].errors
    db_session.expire_all()
    assert [t.name for t in db_session.get(Customer, dot.id).tags] == ["payment-problem"]


def test_audience_filter_limits_the_rule(db_session, auto_settings):
    _failed_invoice(db_session, name="Travel", industry="travel")
    _failed_invoice(db_session, name="Health", industry="healthcare")
    _rule(db_session, [{"type": "add_tag", "tag": "x"}], audience='industry = "travel"')
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert [f.customer_name for f in report.firings] == ["Travel"]
    assert report.skipped_audience == 1
    with pytest.raises(InvalidInput, match="field 'audience'"):
        service.create_rule(
            db_session=db_session,
            definition={
                "name": "Bad audience",
                "trigger": "payment_failed",
                "audience": "industri = 'travel'",
                "actions": [{"type": "add_tag", "tag": "x"}],
            },
        )


def test_webhook_to_a_closed_port_fails_clearly(db_session, auto_settings):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _failed_invoice(db_session, name="Eve")
    _rule(db_session, [{"type": "webhook", "url": f"http://127.0.0.1:{port}/x", "retries": 1}])
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    (error,) = report.firings[0].errors
    assert (
        f"webhook POST http://127.0.0.1:{port}/x failed after 2 attempt(s): cannot connect" in error
    )


@pytest.mark.parametrize("url", ["not a url", "ftp://host/x", "http://", "mailto:a@b.c"])
def test_webhook_bad_url_is_a_clear_error(url):
    with pytest.raises(InvalidInput, match="bad webhook URL"):
        webhooks.post(url=url, payload={}, secret=b"k" * 16, delivery_id="d")


def test_webhook_4xx_is_not_retried(receiver):
    receiver.statuses = [404]
    with pytest.raises(webhooks.WebhookError, match="after 1 attempt\\(s\\): HTTP 404"):
        webhooks.post(
            url=receiver.url, payload={"a": 1}, secret=b"k" * 16, delivery_id="d", retries=3
        )
    assert len(receiver.requests) == 1


def test_webhook_retries_5xx_then_succeeds(receiver):
    receiver.statuses = [503, 502, 200]
    delivery = webhooks.post(
        url=receiver.url, payload={"a": 1}, secret=b"k" * 16, delivery_id="d", backoff=0.01
    )
    assert (delivery.status_code, delivery.attempts) == (200, 3)


def test_signature_verification_rejects_old_and_malformed_headers():
    secret, body = b"s" * 16, b'{"a":1}'
    header = webhooks.sign(secret, 1_700_000_000, body)
    assert webhooks.verify(secret, header, body, now=1_700_000_100)
    assert not webhooks.verify(secret, header, body, now=1_700_000_000 + 301)  # replayed late
    assert not webhooks.verify(secret, "garbage", body, now=1_700_000_000)
    assert not webhooks.verify(secret, "t=1700000000", body, now=1_700_000_000)
    # hand-computed: HMAC-SHA256(key, "<t>." + body)
    import hashlib
    import hmac

    expected = hmac.new(secret, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_task_title_is_cut_to_the_column_length(db_session, auto_settings):
    _failed_invoice(db_session, name="N" * 200)
    title = "  Call {{ customer.name }} {{ customer.name }}"  # 406 characters once rendered
    _rule(db_session, [{"type": "create_task", "title": title}])
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert report.firings[0].status == "done", report.firings[0].errors
    task = db_session.scalars(select(Task)).one()
    assert task.title == "Call " + "N" * 200 + " " + "N" * 49  # tasks.title holds 255


def test_task_for_a_deactivated_owner_goes_by_the_assignment_rules(db_session, auto_settings):
    from keepwell.tasks.assignment import create_rule

    gone = StaffUser(email="gone@example.com", name="Gone", is_active=False)
    cover = StaffUser(email="cover@example.com", name="Cover")
    db_session.add_all([gone, cover])
    db_session.flush()
    create_rule(db_session=db_session, name="Cover all", assignee_ids=[cover.id])
    ann = _failed_invoice(db_session, owner_id=gone.id)
    _rule(db_session, [{"type": "create_task", "title": "Call {{ customer.name }}"}])
    report = service.run(db_session=db_session, settings=auto_settings, now=at(2026, 3, 2))
    assert report.firings[0].status == "done", report.firings[0].errors
    task = db_session.scalars(select(Task)).one()
    assert (task.customer_id, task.owner_id) == (ann.id, cover.id)
