"""Rule and action definitions, validated with pydantic before anything is saved.

A rule definition (YAML or JSON file, or CLI options) looks like::

    name: Payment failed
    trigger: payment_failed          # or {kind: payment_failed, within_days: 14}
    params: {within_days: 14}
    audience: mrr >= 100             # optional segment filter text
    cooldown_days: 7
    actions:
      - {type: create_task, title: "Payment failed: {{ customer.name }}", priority: high}
      - {type: send_email, template: payment-failed}
      - {type: playbook, name: Payment failed playbook}

Errors raise :class:`~keepwell.errors.InvalidInput` naming the field (``params.percent``,
``actions[1].url``) and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keepwell.errors import InvalidInput

TEMPLATE_ROOTS = frozenset({"customer", "rule", "reason", "journey"})
"""Names a task title/body template may use (``customer.name``, ``reason``, ...)."""


class StrictModel(BaseModel):
    """Base of definition models: unknown fields are errors, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_template(text: str) -> str:
    env = SandboxedEnvironment()
    try:
        parsed = env.parse(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"bad template syntax: {exc.message} (line {exc.lineno})") from None
    unknown = sorted(meta.find_undeclared_variables(parsed) - TEMPLATE_ROOTS)
    if unknown:
        raise ValueError(
            f"unknown template variable {unknown[0]!r}; use {', '.join(sorted(TEMPLATE_ROOTS))}"
        )
    return text


# -- triggers ----------------------------------------------------------------------------


class UsageDrop(StrictModel):
    """Events in the last 28 days fell by at least ``percent`` vs the previous 28 days."""

    percent: float = Field(gt=0, le=100)
    min_previous_events: int = Field(default=10, ge=1)


class NoActivity(StrictModel):
    """No usage event for ``days`` days (paying customers)."""

    days: int = Field(ge=1)


class InvoiceOverdue(StrictModel):
    """An unpaid invoice at least ``days`` days past its due date."""

    days: int = Field(default=0, ge=0)


class PaymentFailed(StrictModel):
    """An invoice whose payment failed, issued in the last ``within_days`` days."""

    within_days: int = Field(default=30, ge=1)


class RiskCrossed(StrictModel):
    """The latest churn probability is >= ``threshold`` and the previous one was below."""

    threshold: float = Field(gt=0, lt=1)


class HealthRed(StrictModel):
    """The latest health band is red and the previous one was not (or there was none)."""


class NpsDetractor(StrictModel):
    """An NPS answer <= ``max_score`` in the last ``within_days`` days."""

    max_score: int = Field(default=6, ge=0, le=10)
    within_days: int = Field(default=30, ge=1)


class RenewalIn(StrictModel):
    """A subscription renews within ``days`` days (billing periods in ``billing_periods``)."""

    days: int = Field(ge=1, le=366)
    billing_periods: list[Literal["month", "quarter", "year"]] = Field(
        default_factory=lambda: ["year"], min_length=1
    )


class SegmentEntered(StrictModel):
    """The customer entered segment ``segment`` in the last ``within_days`` days."""

    segment: str = Field(min_length=1)
    within_days: int = Field(default=7, ge=1)


TRIGGERS: dict[str, type[StrictModel]] = {
    "usage_drop": UsageDrop,
    "no_activity": NoActivity,
    "invoice_overdue": InvoiceOverdue,
    "payment_failed": PaymentFailed,
    "risk_crossed": RiskCrossed,
    "health_red": HealthRed,
    "nps_detractor": NpsDetractor,
    "renewal_in": RenewalIn,
    "segment_entered": SegmentEntered,
}
"""Trigger kind -> its parameter model."""


# -- actions -----------------------------------------------------------------------------


class CreateTask(StrictModel):
    """Create a task for the customer's owner; title and body are Jinja2 templates."""

    type: Literal["create_task"]
    title: str = Field(min_length=1, max_length=500)
    body: str | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    due_in_days: int | None = Field(default=None, ge=0)

    @field_validator("title", "body")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return value if value is None else _check_template(value)


class SendEmail(StrictModel):
    """Queue a template e-mail to the customer (suppressions are respected)."""

    type: Literal["send_email"]
    template: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)


class AddTag(StrictModel):
    """Put a tag on the customer."""

    type: Literal["add_tag"]
    tag: str = Field(min_length=1, max_length=80)


class RemoveTag(StrictModel):
    """Take a tag off the customer."""

    type: Literal["remove_tag"]
    tag: str = Field(min_length=1, max_length=80)


class Enrol(StrictModel):
    """Enrol the customer in a journey."""

    type: Literal["enrol"]
    journey: str = Field(min_length=1)


class Webhook(StrictModel):
    """POST a signed JSON body to ``url`` (see :mod:`keepwell.automation.webhooks`)."""

    type: Literal["webhook"]
    url: str
    secret: str | None = Field(default=None, min_length=16)
    timeout: float = Field(default=10.0, gt=0, le=120)
    retries: int = Field(default=2, ge=0, le=10)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        return value


class UsePlaybook(StrictModel):
    """Run the actions of a named playbook (rules only)."""

    type: Literal["playbook"]
    name: str = Field(min_length=1)


Action = Annotated[
    CreateTask | SendEmail | AddTag | RemoveTag | Enrol | Webhook | UsePlaybook,
    Field(discriminator="type"),
]
ACTION_TYPES = ("create_task", "send_email", "add_tag", "remove_tag", "enrol", "webhook")


class _ActionList(BaseModel):
    actions: list[Action]


class RuleDefinition(StrictModel):
    """A whole rule, as written in a file or given on the command line."""

    name: str = Field(min_length=1, max_length=120)
    description: str | None = None
    enabled: bool = True
    trigger: str
    params: dict[str, Any] = Field(default_factory=dict)
    audience: str | None = None
    cooldown_days: int = Field(default=0, ge=0, le=3650)
    actions: list[dict[str, Any]] = Field(min_length=1)


def _field(loc: tuple[Any, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ACTION_TYPES or (part == "playbook" and out.endswith("]")):
            continue  # the discriminated union's tag adds no information
        else:
            out += f".{part}" if out else str(part)
    return out


def raise_validation(exc: ValidationError, prefix: str = "") -> None:
    """Re-raise pydantic's first error as :class:`InvalidInput` naming the field."""
    errors = exc.errors()
    # an unknown field is usually the cause of a "missing" one (a typo): report it first
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "union_tag_invalid":
        msg = f"unknown action type {err.get('input', {}).get('type')!r}"
    elif err["type"] == "union_tag_not_found":
        msg = "an action needs a 'type'"
    raise InvalidInput(msg, field=_field(err["loc"], prefix)) from None


def trigger_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` validated for trigger ``kind`` (defaults filled in)."""
    model = TRIGGERS.get(kind)
    if model is None:
        raise InvalidInput(
            f"unknown trigger {kind!r}", field="trigger", expected=", ".join(TRIGGERS)
        )
    try:
        return model.model_validate(params or {}).model_dump()
    except ValidationError as exc:
        raise_validation(exc, "params")
    raise AssertionError  # pragma: no cover


def actions(
    items: list[dict[str, Any]], *, field: str = "actions", playbooks: bool = True
) -> list[dict[str, Any]]:
    """``items`` validated as an action list (returns plain dicts with defaults filled in)."""
    if not isinstance(items, list):
        raise InvalidInput("must be a list of actions", field=field)
    try:
        parsed = _ActionList.model_validate({"actions": items}).actions
    except ValidationError as exc:
        raise_validation(exc)
    out = [a.model_dump(exclude_none=True) for a in parsed]
    if not playbooks:
        for i, a in enumerate(out):
            if a["type"] == "playbook":
                raise InvalidInput("a playbook cannot use another playbook", field=f"{field}[{i}]")
    return out


def rule(data: dict[str, Any]) -> dict[str, Any]:
    """A whole rule definition validated: trigger params and actions included."""
    if not isinstance(data, dict):
        raise InvalidInput("a rule definition must be a mapping", expected="name, trigger, ...")
    data = dict(data)
    trig = data.get("trigger")
    if isinstance(trig, dict):
        trig = dict(trig)
        data["trigger"] = trig.pop("kind", None)
        data["params"] = {**trig, **data.get("params", {})}
    try:
        base = RuleDefinition.model_validate(data).model_dump()
    except ValidationError as exc:
        raise_validation(exc)
    base["params"] = trigger_params(base["trigger"], base["params"])
    base["actions"] = actions(base["actions"])
    if base["audience"] is not None and not base["audience"]:
        base["audience"] = None
    return base


def load_file(path: Path) -> Any:
    """A YAML (``.yaml``/``.yml``) or JSON definition file, parsed (not validated)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML is usually present
            raise InvalidInput(
                "reading YAML needs PyYAML", field=str(path), expected="a .json file"
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"not valid YAML: {exc}".splitlines()[0], field=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            field=str(path),
        ) from None
