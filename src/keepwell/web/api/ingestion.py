"""`POST /v1/events` (batch usage events) and `POST /v1/webhooks/stripe` (billing webhook)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from keepwell.billing import stripe_webhook
from keepwell.errors import InvalidInput
from keepwell.events.store import EventStore
from keepwell.web import ingest
from keepwell.web.auth import AppSettings, DbSession, Writer
from keepwell.web.problems import Problem

router = APIRouter()

MAX_EVENTS_BODY = 256 * 1024 * 1024
MAX_WEBHOOK_BODY = 1024 * 1024


EVENT_SCHEMA = {
    "type": "object",
    "required": ["customer_id", "event", "occurred_at"],
    "additionalProperties": False,
    "properties": {
        "customer_id": {"type": "string", "description": "The customer's external id."},
        "event": {"type": "string", "example": "login"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "user_id": {"type": ["string", "null"]},
        "value": {"type": ["number", "null"]},
        "properties": {"type": ["object", "null"]},
    },
}


class EventsAccepted(BaseModel):
    rows: int
    skipped: bool
    version: int | None


class WebhookAnswer(BaseModel):
    received: bool
    event_id: str
    type: str
    outcome: str


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the body is larger than {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body is larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/events",
    response_model=EventsAccepted,
    tags=["events"],
    summary="Append a batch of usage events",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": EVENT_SCHEMA}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_events(
    request: Request,
    db_session: DbSession,
    settings: AppSettings,
    _: Writer,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retrying with the same key writes the batch once.",
        ),
    ] = None,
) -> EventsAccepted:
    """A JSON array of events, or JSON lines (``Content-Type: application/x-ndjson``).

    Every row is checked first; any bad row rejects the batch with a 422 listing each problem
    by row number and field. The good batch is appended in one atomic commit.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        json_lines = False
    elif media in ingest.JSON_LINES_TYPES:
        json_lines = True
    else:
        raise Problem(
            415,
            f"cannot read {media or 'a body without Content-Type'}",
            hint="send application/json (an array) or application/x-ndjson (JSON lines)",
        )
    body = await _body(request, MAX_EVENTS_BODY)
    store = EventStore.from_settings(settings)
    rows, result = await run_in_threadpool(
        ingest.append_events,
        db_session=db_session,
        store=store,
        body=body,
        json_lines=json_lines,
        idempotency_key=idempotency_key,
    )
    return EventsAccepted(rows=rows, skipped=result.skipped, version=result.version)


@router.post(
    "/webhooks/stripe",
    response_model=WebhookAnswer,
    tags=["webhooks"],
    summary="Stripe billing webhook",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}
    },
)
async def stripe(
    request: Request,
    db_session: DbSession,
    settings: AppSettings,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookAnswer:
    """Customer, subscription and invoice events in Stripe's format, signed with the endpoint
    secret (``KEEPWELL_STRIPE_WEBHOOK_SECRET``). Authenticated by the signature alone."""
    secret = settings.stripe_webhook_secret
    if not secret:
        raise Problem(
            503,
            "the Stripe webhook is not configured",
            hint="set KEEPWELL_STRIPE_WEBHOOK_SECRET to the endpoint's signing secret",
        )
    body = await _body(request, MAX_WEBHOOK_BODY)
    try:
        stripe_webhook.verify_signature(body, stripe_signature, secret=secret)
    except InvalidInput as exc:
        raise Problem(400, exc.message, kind="bad-signature") from None
    result = await run_in_threadpool(
        stripe_webhook.handle_event, db_session=db_session, payload=body
    )
    return WebhookAnswer(
        received=True, event_id=result.event_id, type=result.type, outcome=result.outcome
    )
