"""Stripe-format billing webhooks: verify the signature, then update customers, subscriptions
and invoices idempotently.

Signature (Stripe's scheme): the ``Stripe-Signature`` header is ``t=<unix time>,v1=<hex>[,v1=...]``
where ``v1 = HMAC-SHA256(endpoint secret, "<t>.<raw body>")``. A request is accepted when one
``v1`` matches and ``t`` is within :data:`TOLERANCE_SECONDS` of now (stops replays).

Events handled (others are acknowledged and ignored):

=====================================  ==========================================================
``customer.created`` / ``.updated``    upsert the customer (external id = Stripe's ``cus_...``)
``customer.subscription.created`` /    the subscription's current period row: created, or ended
``.updated``                           and followed by a new row when plan or MRR changed
``customer.subscription.deleted``      the open row ends (``canceled``, with the reason)
``invoice.paid`` / ``.payment_failed`` upsert the invoice (``paid`` / ``failed``)
=====================================  ==========================================================

The customer's timeline shows the changes through the subscription and invoice rows.
Each event id is applied once (:class:`keepwell.web.models.WebhookEvent`): a redelivery changes
nothing. MRR is the sum over the subscription's items of ``unit_amount x quantity``, spread over
months (year / 12, week x 52 / 12, day x 365 / 12, divided by ``interval_count``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keepwell.billing.models import (
    BillingPeriod,
    Invoice,
    InvoiceStatus,
    Subscription,
    SubscriptionStatus,
)
from keepwell.customers.models import Customer
from keepwell.errors import InvalidInput
from keepwell.web.models import WebhookEvent

__all__ = [
    "HANDLED",
    "TOLERANCE_SECONDS",
    "WebhookResult",
    "handle_event",
    "sign",
    "verify_signature",
]

TOLERANCE_SECONDS = 300
SOURCE = "stripe"
HANDLED = (
    "customer.created",
    "customer.updated",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
)

_STATUS = {
    "trialing": SubscriptionStatus.trialing,
    "active": SubscriptionStatus.active,
    "past_due": SubscriptionStatus.past_due,
    "unpaid": SubscriptionStatus.past_due,
    "incomplete": SubscriptionStatus.past_due,
    "paused": SubscriptionStatus.paused,
    "canceled": SubscriptionStatus.canceled,
    "incomplete_expired": SubscriptionStatus.canceled,
}
_MONTHLY_FACTOR = {"month": 1.0, "year": 1 / 12, "week": 52 / 12, "day": 365 / 12}


@dataclass(frozen=True)
class WebhookResult:
    """What a delivery did: ``applied`` (changed data), ``duplicate`` or ``ignored``."""

    event_id: str
    type: str
    outcome: str
    customer_external_id: str | None = None


def sign(payload: bytes, *, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload`` (for tests and senders)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    payload: bytes, header: str | None, *, secret: str, now: float | None = None
) -> None:
    """Check a ``Stripe-Signature`` header; raise :class:`InvalidInput` saying what is wrong."""
    if not header:
        raise InvalidInput("missing Stripe-Signature header", field="Stripe-Signature")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidInput(
                    "bad timestamp in Stripe-Signature", field="Stripe-Signature"
                ) from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidInput(
            "Stripe-Signature needs t=<time> and v1=<signature>", field="Stripe-Signature"
        )
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise InvalidInput("signature does not match the payload", field="Stripe-Signature")
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise InvalidInput(
            f"signature timestamp is more than {TOLERANCE_SECONDS} s away from now",
            field="Stripe-Signature",
        )


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"expected a Unix time, got {value!r}")
    return datetime.fromtimestamp(int(value), tz=UTC)


def _text(value: Any, limit: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"expected text, got {type(value).__name__}")
    return value[:limit]


def _obj(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise InvalidInput("event has no data.object", field="data.object")
    return obj


def _customer(db_session: Session, external_id: str, *, created: datetime | None) -> Customer:
    customer = db_session.scalars(
        select(Customer).where(Customer.external_id == external_id)
    ).first()
    if customer is None:
        customer = Customer(
            external_id=external_id,
            name=external_id,
            signup_at=created or datetime.now(UTC),
        )
        db_session.add(customer)
        db_session.flush()
    return customer


def _apply_customer(db_session: Session, obj: dict[str, Any]) -> Customer:
    external_id = _text(obj.get("id"))
    if not external_id:
        raise InvalidInput("customer object has no id", field="data.object.id")
    customer = _customer(db_session, external_id, created=_time(obj.get("created")))
    name = _text(obj.get("name")) or _text(obj.get("email")) or customer.name
    customer.name = name
    if obj.get("email") is not None:
        customer.email = _text(obj.get("email"), 320)
    address = obj.get("address")
    if isinstance(address, dict) and isinstance(address.get("country"), str):
        country = address["country"].strip().upper()
        if len(country) == 2:
            customer.country = country
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and metadata:
        customer.attributes = {**(customer.attributes or {}), "stripe_metadata": metadata}
    db_session.flush()
    return customer


def _price_terms(obj: dict[str, Any]) -> tuple[str, int, str, BillingPeriod, int]:
    """plan, MRR (minor units), currency, billing period, quantity of a subscription object."""
    items = obj.get("items", {})
    data = items.get("data") if isinstance(items, dict) else None
    if not isinstance(data, list) or not data:
        raise InvalidInput("subscription has no items", field="data.object.items.data")
    mrr = 0.0
    plans: list[str] = []
    currency = _text(obj.get("currency"), 3)
    period = BillingPeriod.month
    quantity = 0
    for item in data:
        price = item.get("price") or item.get("plan") if isinstance(item, dict) else None
        if not isinstance(price, dict):
            raise InvalidInput("subscription item has no price", field="items.data.price")
        amount = price.get("unit_amount", price.get("amount"))
        qty = item.get("quantity", 1)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise InvalidInput("price has no unit_amount", field="items.data.price.unit_amount")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
            raise InvalidInput("bad quantity", field="items.data.quantity")
        recurring = price.get("recurring") or {
            "interval": price.get("interval"),
            "interval_count": price.get("interval_count", 1),
        }
        interval = recurring.get("interval") or "month"
        count = recurring.get("interval_count") or 1
        if interval not in _MONTHLY_FACTOR or not isinstance(count, int) or count < 1:
            raise InvalidInput(f"unknown price interval {interval!r}", field="recurring.interval")
        mrr += amount * qty * _MONTHLY_FACTOR[interval] / count
        if interval == "year":
            period = BillingPeriod.year
        elif interval == "month" and count == 3:
            period = BillingPeriod.quarter
        plans.append(
            _text(price.get("nickname"))
            or _text(price.get("lookup_key"))
            or (_text(price.get("product")) if isinstance(price.get("product"), str) else None)
            or _text(price.get("id"))
            or "stripe"
        )
        currency = currency or _text(price.get("currency"), 3)
        quantity += qty
    return (
        ", ".join(dict.fromkeys(plans))[:120],
        round(mrr),
        (currency or "usd").upper(),
        period,
        max(quantity, 1),
    )


def _periods(db_session: Session, sub_id: str) -> list[Subscription]:
    """The rows of one Stripe subscription (``sub_1``, ``sub_1~2``, ...), oldest first."""
    return list(
        db_session.scalars(
            select(Subscription)
            .where(
                or_(
                    Subscription.external_id == sub_id,
                    Subscription.external_id.startswith(sub_id + "~", autoescape=True),
                )
            )
            .order_by(Subscription.started_at, Subscription.id)
        )
    )


def _apply_subscription(
    db_session: Session, obj: dict[str, Any], *, deleted: bool, at: datetime
) -> Customer:
    sub_id = _text(obj.get("id"))
    customer_ref = obj.get("customer")
    if isinstance(customer_ref, dict):
        customer_ref = customer_ref.get("id")
    customer_id = _text(customer_ref)
    if not sub_id or not customer_id:
        raise InvalidInput("subscription needs id and customer", field="data.object")
    customer = _customer(db_session, customer_id, created=_time(obj.get("created")))
    plan, mrr, currency, period, quantity = _price_terms(obj)
    status = _STATUS.get(str(obj.get("status")), SubscriptionStatus.active)
    started = _time(obj.get("start_date")) or _time(obj.get("created")) or at
    rows = _periods(db_session, sub_id)
    current = rows[-1] if rows else None
    reason = None
    details = obj.get("cancellation_details")
    if isinstance(details, dict):
        reason = _text(details.get("feedback")) or _text(details.get("reason"))
    if deleted or status is SubscriptionStatus.canceled:
        ended = _time(obj.get("ended_at")) or _time(obj.get("canceled_at")) or at
        if current is None:
            current = Subscription(
                external_id=sub_id,
                customer_id=customer.id,
                plan=plan,
                mrr_minor=mrr,
                currency=currency,
                billing_period=period,
                quantity=quantity,
                started_at=min(started, ended),
            )
            db_session.add(current)
        if current.ended_at is None or deleted:
            current.ended_at = max(ended, current.started_at)
        current.status = SubscriptionStatus.canceled
        current.cancel_reason = reason or current.cancel_reason
        db_session.flush()
        return customer
    if (
        current is not None
        and current.ended_at is None
        and (current.plan != plan or current.mrr_minor != mrr or current.currency != currency)
    ):
        change_at = max(at, current.started_at)
        current.ended_at = change_at
        db_session.flush()
        current = Subscription(
            external_id=f"{sub_id}~{len(rows) + 1}",
            customer_id=customer.id,
            plan=plan,
            mrr_minor=mrr,
            currency=currency,
            billing_period=period,
            quantity=quantity,
            started_at=change_at,
            status=status,
        )
        db_session.add(current)
    elif current is None:
        current = Subscription(
            external_id=sub_id,
            customer_id=customer.id,
            plan=plan,
            mrr_minor=mrr,
            currency=currency,
            billing_period=period,
            quantity=quantity,
            started_at=started,
            status=status,
        )
        db_session.add(current)
    else:
        current.status = status
        current.quantity = quantity
        current.billing_period = period
    db_session.flush()
    return customer


def _apply_invoice(
    db_session: Session, obj: dict[str, Any], *, paid: bool, at: datetime
) -> Customer:
    invoice_id = _text(obj.get("id"))
    customer_ref = obj.get("customer")
    if isinstance(customer_ref, dict):
        customer_ref = customer_ref.get("id")
    customer_id = _text(customer_ref)
    if not invoice_id or not customer_id:
        raise InvalidInput("invoice needs id and customer", field="data.object")
    customer = _customer(db_session, customer_id, created=_time(obj.get("created")))
    amount = obj.get("amount_due", obj.get("total"))
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise InvalidInput("invoice has no amount_due", field="data.object.amount_due")
    invoice = db_session.scalars(select(Invoice).where(Invoice.external_id == invoice_id)).first()
    if invoice is None:
        invoice = Invoice(
            external_id=invoice_id,
            customer_id=customer.id,
            amount_minor=amount,
            currency=(_text(obj.get("currency"), 3) or "usd").upper(),
            issued_at=_time(obj.get("created")) or at,
        )
        db_session.add(invoice)
    invoice.amount_minor = amount
    invoice.due_at = _time(obj.get("due_date"))
    sub_ref = obj.get("subscription")
    if isinstance(sub_ref, str):
        rows = _periods(db_session, sub_ref)
        if rows:
            invoice.subscription_id = rows[-1].id
    attempts = obj.get("attempt_count")
    if isinstance(attempts, int) and not isinstance(attempts, bool):
        invoice.attempt_count = attempts
    if paid:
        transitions = obj.get("status_transitions")
        paid_at = _time(transitions.get("paid_at")) if isinstance(transitions, dict) else None
        invoice.status = InvoiceStatus.paid
        invoice.paid_at = paid_at or at
        invoice.failure_reason = None
    else:
        invoice.status = InvoiceStatus.failed
        error = obj.get("last_finalization_error") or obj.get("last_payment_error")
        message = error.get("message") if isinstance(error, dict) else None
        invoice.failure_reason = _text(message) or "payment failed"
    db_session.flush()
    return customer


def handle_event(*, db_session: Session, payload: bytes) -> WebhookResult:
    """Apply one (already verified) Stripe event; a repeated event id changes nothing.

    Raises:
        InvalidInput: the payload is not a Stripe event, or a handled event lacks a field it
            needs (names the field); nothing is changed then.
    """
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the payload is not JSON", field="body") from None
    if not isinstance(event, dict):
        raise InvalidInput("the payload is not an event object", field="body")
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise InvalidInput("event has no id", field="id")
    if not isinstance(kind, str) or not kind or len(kind) > 120:
        raise InvalidInput("event has no type", field="type")
    seen = db_session.scalars(
        select(WebhookEvent).where(WebhookEvent.source == SOURCE, WebhookEvent.event_id == event_id)
    ).first()
    if seen is not None:
        return WebhookResult(event_id=event_id, type=kind, outcome="duplicate")
    if kind not in HANDLED:
        return WebhookResult(event_id=event_id, type=kind, outcome="ignored")
    at = _time(event.get("created")) or datetime.now(UTC)
    obj = _obj(event)
    with db_session.begin_nested():
        if kind.startswith("customer.subscription."):
            customer = _apply_subscription(
                db_session, obj, deleted=kind.endswith(".deleted"), at=at
            )
        elif kind.startswith("customer."):
            customer = _apply_customer(db_session, obj)
        else:
            customer = _apply_invoice(db_session, obj, paid=kind == "invoice.paid", at=at)
        db_session.add(WebhookEvent(source=SOURCE, event_id=event_id, type=kind))
        try:
            db_session.flush()
        except IntegrityError:  # the same event applied concurrently
            raise InvalidInput("event is being applied concurrently", field="id") from None
    return WebhookResult(
        event_id=event_id, type=kind, outcome="applied", customer_external_id=customer.external_id
    )
