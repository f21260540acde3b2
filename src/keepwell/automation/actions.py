"""What rules and journeys do to a customer: one function per action type.

Each action calls the owning domain's service (tasks, tags, campaigns, journeys) or posts a
webhook. :func:`execute` runs one validated action and returns a JSON-able result, or raises;
the caller records the outcome and retries a failed action on the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.orm import Session

from keepwell.config import Settings
from keepwell.customers.models import Customer
from keepwell.errors import KeepwellError, NotFound


class ActionUnavailable(KeepwellError):
    """The domain an action needs is not installed in this keepwell (yet)."""


@dataclass(frozen=True)
class ActionContext:
    """Who the action is for and why: passed to every action."""

    customer: Customer
    key: str
    """Unique per occurrence and action: the dedup key handed to the domain service."""
    reason: str
    now: datetime
    rule: str | None = None
    journey: str | None = None
    source: str = "manual"
    """Who acts, for the domains that record it: ``rule:<id>`` or ``journey:<id>``."""


_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def customer_fields(customer: Customer) -> dict[str, Any]:
    """The customer fields templates and webhooks see."""
    return {
        "id": customer.id,
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "company": customer.company,
        "industry": customer.industry,
        "country": customer.country,
        "status": customer.status.value if customer.status else None,
        "time_zone": customer.time_zone,
        "owner_id": customer.owner_id,
        "owner_email": customer.owner.email if customer.owner else None,
        "tags": sorted(t.name for t in customer.tags),
        "attributes": dict(customer.attributes or {}),
    }


def render(text: str, ctx: ActionContext) -> str:
    """A task title/body template rendered in the sandbox (no attribute escapes, no I/O)."""
    try:
        return _env.from_string(text).render(
            customer=customer_fields(ctx.customer),
            reason=ctx.reason,
            rule=ctx.rule,
            journey=ctx.journey,
        )
    except TemplateError as exc:
        raise KeepwellError(f"cannot render template {text!r}: {exc}") from None


def _missing(domain: str) -> ActionUnavailable:
    return ActionUnavailable(f"keepwell.{domain} is not available in this installation")


def _create_task(db_session: Session, settings: Settings, action: dict, ctx: ActionContext):
    try:
        from keepwell.tasks.models import Task
        from keepwell.tasks.service import create_task
    except ImportError:
        raise _missing("tasks") from None
    due = action.get("due_in_days")
    owner = ctx.customer.owner
    title_length = Task.__table__.c.title.type.length
    task = create_task(
        db_session=db_session,
        customer_id=ctx.customer.id,
        title=render(action["title"], ctx).strip()[:title_length],
        description=render(action["body"], ctx) if action.get("body") else None,
        # a deactivated owner gets no new work: the assignment rules pick someone
        owner_id=owner.id if owner is not None and owner.is_active else None,
        due_at=ctx.now + timedelta(days=due) if due is not None else None,
        priority=action.get("priority", "normal"),
        source=ctx.source,
        dedup_key=ctx.key,
    )
    return {"task_id": getattr(task, "id", None)}


def _send_email(db_session: Session, settings: Settings, action: dict, ctx: ActionContext):
    try:
        from keepwell.campaigns.service import send_template_email
    except ImportError:
        raise _missing("campaigns") from None
    if not ctx.customer.email:
        return {"queued": False, "note": "no e-mail address"}
    message = send_template_email(
        db_session=db_session,
        settings=settings,
        template_name=action["template"],
        customer_id=ctx.customer.id,
        context={"reason": ctx.reason, **action.get("context", {})},
        dedup_key=ctx.key,
        kind="journey" if ctx.journey else "alert",
    )
    if message is None:
        return {"queued": False, "note": "suppressed or already queued"}
    return {"queued": True, "message_id": getattr(message, "id", None)}


def _tag(add: bool):
    def run(db_session: Session, settings: Settings, action: dict, ctx: ActionContext):
        try:
            from keepwell.customers import tags
        except ImportError:
            raise _missing("customers.tags") from None
        if add:
            changed = tags.add_tag(
                db_session=db_session, customer_id=ctx.customer.id, tag_name=action["tag"]
            )
            return {"tag": action["tag"], "added": bool(changed)}
        try:
            changed = tags.remove_tag(
                db_session=db_session, customer_id=ctx.customer.id, tag_name=action["tag"]
            )
        except NotFound:  # the tag does not exist at all: nothing to remove
            changed = False
        return {"tag": action["tag"], "removed": bool(changed)}

    return run


def _enrol(db_session: Session, settings: Settings, action: dict, ctx: ActionContext):
    from keepwell.journeys.service import enrol

    reason = f"rule {ctx.rule}: {ctx.reason}" if ctx.rule else ctx.reason
    enrollment = enrol(
        db_session=db_session,
        journey=action["journey"],
        customer_id=ctx.customer.id,
        reason=reason,
        now=ctx.now,
    )
    if enrollment is None:
        return {"enrolled": False, "note": "already enrolled"}
    return {"enrolled": True, "enrollment_id": enrollment.id}


def _webhook(db_session: Session, settings: Settings, action: dict, ctx: ActionContext):
    from keepwell.automation import webhooks

    secret = action.get("secret")
    payload = {
        "event": "journey.step" if ctx.journey else "alert.fired",
        "rule": ctx.rule,
        "journey": ctx.journey,
        "reason": ctx.reason,
        "dedup_key": ctx.key,
        "occurred_at": ctx.now.isoformat(),
        "customer": customer_fields(ctx.customer),
    }
    delivery = webhooks.post(
        url=action["url"],
        payload=payload,
        secret=secret.encode() if secret else settings.resolved_secret_key(),
        delivery_id=ctx.key,
        timeout=action.get("timeout", 10.0),
        retries=action.get("retries", 2),
    )
    return {"status_code": delivery.status_code, "attempts": delivery.attempts}


RUNNERS: dict[str, Callable[[Session, Settings, dict, ActionContext], dict[str, Any]]] = {
    "create_task": _create_task,
    "send_email": _send_email,
    "add_tag": _tag(True),
    "remove_tag": _tag(False),
    "enrol": _enrol,
    "webhook": _webhook,
}


def execute(
    *, db_session: Session, settings: Settings, action: dict[str, Any], ctx: ActionContext
) -> dict[str, Any]:
    """Run one validated action inside a savepoint: a failure leaves no partial writes."""
    runner = RUNNERS[action["type"]]
    with db_session.begin_nested():
        return runner(db_session, settings, action, ctx)


def describe(action: dict[str, Any]) -> str:
    """One line naming an action, secrets left out."""
    kind = action["type"]
    detail = {
        "create_task": action.get("title"),
        "send_email": action.get("template"),
        "add_tag": action.get("tag"),
        "remove_tag": action.get("tag"),
        "enrol": action.get("journey"),
        "webhook": action.get("url"),
        "playbook": action.get("name"),
    }.get(kind)
    return f"{kind} {detail!r}" if detail else kind


def is_unsubscribed(db_session: Session, customer: Customer) -> bool:
    """True when the customer's address is suppressed (unsubscribed, bounced, complained)."""
    if not customer.email:
        return False
    try:
        from keepwell.email.service import is_suppressed
    except ImportError:
        return False
    return bool(is_suppressed(db_session=db_session, address=customer.email))
