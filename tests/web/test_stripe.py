"""The Stripe webhook: signatures (good, bad, stale), and what each event does, over HTTP."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import select

from keepwell.billing import stripe_webhook
from keepwell.billing.models import Invoice, InvoiceStatus, Subscription, SubscriptionStatus
from keepwell.customers.models import Customer
from keepwell.db import session_scope
from keepwell.errors import InvalidInput
from tests.factories import at
from tests.web.conftest import WEBHOOK_SECRET, Live

T0 = 1767225600  # 2026-01-01T00:00:00Z


def event(kind: str, obj: dict, *, created: int = T0) -> dict:
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": kind,
        "created": created,
        "data": {"object": obj},
    }


def send(live: Live, payload: dict | bytes, *, secret: str = WEBHOOK_SECRET, **sign_kw):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    header = stripe_webhook.sign(body, secret=secret, **sign_kw)
    with live.client(None) as client:
        return client.post(
            "/v1/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )


def subscription(sub_id: str, cus_id: str, *, amount: int, interval: str = "month", **extra):
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": cus_id,
        "status": "active",
        "created": T0,
        "start_date": T0,
        "currency": "eur",
        "items": {
            "data": [
                {
                    "quantity": extra.pop("quantity", 1),
                    "price": {
                        "id": "price_1",
                        "nickname": extra.pop("plan", "pro"),
                        "unit_amount": amount,
                        "currency": "eur",
                        "recurring": {"interval": interval, "interval_count": 1},
                    },
                }
            ]
        },
        **extra,
    }


def rows(live: Live, model, **where):
    with session_scope(live.engine) as db_session:
        query = select(model).filter_by(**where)
        return list(db_session.scalars(query.order_by(model.id)))


def ids() -> tuple[str, str]:
    n = uuid.uuid4().hex[:10]
    return f"cus_{n}", f"sub_{n}"


def test_customer_events_upsert_the_customer(live: Live) -> None:
    cus, _ = ids()
    obj = {"id": cus, "object": "customer", "email": "ops@acme.test", "created": T0}
    assert send(live, event("customer.created", obj)).json()["outcome"] == "applied"
    updated = {**obj, "name": "Acme <b>GmbH</b>", "address": {"country": "de"}}
    assert send(live, event("customer.updated", updated)).status_code == 200
    (customer,) = rows(live, Customer, external_id=cus)
    assert (customer.name, customer.email, customer.country) == (
        "Acme <b>GmbH</b>",
        "ops@acme.test",
        "DE",
    )
    assert customer.signup_at == at(2026, 1, 1)


def test_subscription_lifecycle_keeps_constant_price_periods(live: Live) -> None:
    cus, sub = ids()
    created = send(
        live,
        event(
            "customer.subscription.created", subscription(sub, cus, amount=12000, interval="year")
        ),
    )
    assert created.status_code == 200, created.text
    (first,) = rows(live, Subscription, customer_id=rows(live, Customer, external_id=cus)[0].id)
    assert (first.external_id, first.plan, first.mrr_minor, first.currency) == (
        sub,
        "pro",
        1000,
        "EUR",
    )
    assert first.billing_period.value == "year"
    assert first.started_at == at(2026, 1, 1)

    # Same price, new status: the row is updated in place.
    past_due = subscription(sub, cus, amount=12000, interval="year", status="past_due")
    send(live, event("customer.subscription.updated", past_due, created=T0 + 86400))
    (row,) = rows(live, Subscription, external_id=sub)
    assert row.status is SubscriptionStatus.past_due
    assert row.ended_at is None

    # An upgrade on 2026-02-01: the old period ends, a new one starts at the new MRR.
    upgrade = subscription(sub, cus, amount=3000, plan="business", quantity=2)
    send(live, event("customer.subscription.updated", upgrade, created=T0 + 31 * 86400))
    customer_id = rows(live, Customer, external_id=cus)[0].id
    periods = rows(live, Subscription, customer_id=customer_id)
    assert [(p.external_id, p.plan, p.mrr_minor, p.started_at, p.ended_at) for p in periods] == [
        (sub, "pro", 1000, at(2026, 1, 1), at(2026, 2, 1)),
        (f"{sub}~2", "business", 6000, at(2026, 2, 1), None),
    ]

    # Cancelled on 2026-03-01 with a reason.
    cancel = subscription(
        sub,
        cus,
        amount=3000,
        plan="business",
        quantity=2,
        status="canceled",
        ended_at=T0 + 59 * 86400,
        cancellation_details={"feedback": "too_expensive"},
    )
    send(live, event("customer.subscription.deleted", cancel, created=T0 + 59 * 86400))
    last = rows(live, Subscription, external_id=f"{sub}~2")[0]
    assert (last.status, last.ended_at, last.cancel_reason) == (
        SubscriptionStatus.canceled,
        at(2026, 3, 1),
        "too_expensive",
    )


def test_invoice_paid_and_failed(live: Live) -> None:
    cus, sub = ids()
    send(live, event("customer.subscription.created", subscription(sub, cus, amount=4900)))
    invoice = {
        "id": "in_" + uuid.uuid4().hex[:10],
        "object": "invoice",
        "customer": cus,
        "subscription": sub,
        "amount_due": 4900,
        "currency": "eur",
        "created": T0,
        "attempt_count": 1,
    }
    failed = send(live, event("invoice.payment_failed", invoice))
    assert failed.json()["outcome"] == "applied"
    (row,) = rows(live, Invoice, external_id=invoice["id"])
    assert (row.status, row.amount_minor, row.currency, row.failure_reason) == (
        InvoiceStatus.failed,
        4900,
        "EUR",
        "payment failed",
    )
    assert row.subscription_id == rows(live, Subscription, external_id=sub)[0].id
    paid = {**invoice, "attempt_count": 2, "status_transitions": {"paid_at": T0 + 3600}}
    send(live, event("invoice.paid", paid))
    (row,) = rows(live, Invoice, external_id=invoice["id"])
    assert (row.status, row.paid_at, row.attempt_count, row.failure_reason) == (
        InvoiceStatus.paid,
        at(2026, 1, 1, 1),
        2,
        None,
    )


def test_a_redelivered_event_changes_nothing(live: Live) -> None:
    cus, _ = ids()
    delivery = event("customer.created", {"id": cus, "name": "Once", "created": T0})
    assert send(live, delivery).json()["outcome"] == "applied"
    with session_scope(live.engine) as db_session:
        customer = db_session.scalars(select(Customer).where(Customer.external_id == cus)).one()
        customer.name = "Renamed since"
    assert send(live, delivery).json()["outcome"] == "duplicate"
    assert rows(live, Customer, external_id=cus)[0].name == "Renamed since"


def test_unhandled_event_types_are_acknowledged(live: Live) -> None:
    answer = send(live, event("charge.refunded", {"id": "ch_1"}))
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "ignored"


@pytest.mark.parametrize(
    ("header_for", "message"),
    [
        (lambda body: None, "missing Stripe-Signature"),
        (lambda body: "v1=abc", "needs t="),
        (lambda body: stripe_webhook.sign(body, secret="whsec_other"), "does not match"),
        (lambda body: stripe_webhook.sign(body + b" ", secret=WEBHOOK_SECRET), "does not match"),
        (
            lambda body: stripe_webhook.sign(
                body, secret=WEBHOOK_SECRET, timestamp=int(time.time()) - 301
            ),
            "300 s",
        ),
    ],
    ids=["missing", "malformed", "wrong-secret", "other-payload", "stale"],
)
def test_bad_signatures_are_rejected_and_change_nothing(live: Live, header_for, message) -> None:
    cus, _ = ids()
    body = json.dumps(event("customer.created", {"id": cus, "name": "Forged"})).encode()
    header = header_for(body)
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    with live.client(None) as client:
        answer = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:keepwell:problem:bad-signature"
    assert message in answer.json()["detail"]
    assert rows(live, Customer, external_id=cus) == []


def test_a_bad_event_body_is_a_problem_and_changes_nothing(live: Live) -> None:
    cus, sub = ids()
    broken = subscription(sub, cus, amount=100)
    broken["items"]["data"][0]["price"]["unit_amount"] = "lots"
    answer = send(live, event("customer.subscription.created", broken))
    assert answer.status_code == 422
    assert "unit_amount" in answer.json()["errors"][0]["field"]
    assert rows(live, Customer, external_id=cus) == []
    assert send(live, b"[1, 2]").status_code == 422


def test_signature_scheme_matches_stripes_definition() -> None:
    import hashlib
    import hmac

    body = b'{"id": "evt_1"}'
    expected = hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert stripe_webhook.sign(body, secret="whsec_x", timestamp=1700000000) == (
        f"t=1700000000,v1={expected}"
    )
    header = f"t=1700000000,v0=zzz,v1=deadbeef,v1={expected}"  # any matching v1 will do
    stripe_webhook.verify_signature(body, header, secret="whsec_x", now=1700000000 + 300)
    with pytest.raises(InvalidInput, match="300 s"):
        stripe_webhook.verify_signature(body, header, secret="whsec_x", now=1700000000 + 301)
