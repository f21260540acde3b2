"""Journey definitions, validated with pydantic before they are saved.

A journey (YAML or JSON)::

    name: Onboarding
    trigger: event            # manual | event | segment
    trigger_value: signup     # the event name or the segment name
    exit_conditions:
      - {kind: churned}
      - {kind: became_paying}
      - {kind: unsubscribed}
      - {kind: filter, filter: "tag = 'vip'"}
    steps:
      - {kind: send_email, template: onboarding-day-0}
      - {kind: wait, days: 7}
      - {kind: send_email, template: onboarding-day-7}
      - {kind: create_task, title: "First-week check-in: {{ customer.name }}"}

Steps are the rule actions (``send_email``, ``create_task``, ``add_tag``, ``remove_tag``,
``webhook``) plus ``wait`` (``days`` and/or ``hours``, or ``before_renewal_days``: until N
days before the customer's next renewal). ``send_email`` skips customers whose address is
suppressed (unsubscribed, bounced).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from keepwell.automation import definitions as rule_defs
from keepwell.automation.definitions import StrictModel, raise_validation
from keepwell.errors import InvalidInput

STEP_KINDS = ("wait", "send_email", "create_task", "add_tag", "remove_tag", "webhook")
EXIT_KINDS = ("filter", "became_paying", "unsubscribed", "churned")


class Wait(StrictModel):
    """Wait ``days`` + ``hours``, or until ``before_renewal_days`` before the next renewal."""

    kind: Literal["wait"]
    days: float = Field(default=0, ge=0, le=3650)
    hours: float = Field(default=0, ge=0, le=87600)
    before_renewal_days: int | None = Field(default=None, ge=0, le=366)

    @model_validator(mode="after")
    def _some_wait(self) -> Wait:
        if self.before_renewal_days is None and self.days == 0 and self.hours == 0:
            raise ValueError("a wait needs days, hours or before_renewal_days")
        if self.before_renewal_days is not None and (self.days or self.hours):
            raise ValueError("give either days/hours or before_renewal_days, not both")
        return self


class ExitCondition(StrictModel):
    """When a customer leaves the journey early."""

    kind: Literal["filter", "became_paying", "unsubscribed", "churned"]
    filter: str | None = None

    @model_validator(mode="after")
    def _filter_text(self) -> ExitCondition:
        if (self.kind == "filter") != bool(self.filter):
            raise ValueError("a 'filter' exit needs filter text (and only it has one)")
        return self


class JourneyDefinition(StrictModel):
    """A whole journey, as written in a file."""

    name: str = Field(min_length=1, max_length=120)
    description: str | None = None
    enabled: bool = True
    trigger: Literal["manual", "event", "segment"] = "manual"
    trigger_value: str | None = None
    exit_conditions: list[ExitCondition] = Field(default_factory=list)
    steps: list[dict[str, Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _trigger_value(self) -> JourneyDefinition:
        if self.trigger != "manual" and not self.trigger_value:
            raise ValueError(f"a {self.trigger} trigger needs trigger_value (its name)")
        return self


def _step(i: int, step: Any) -> dict[str, Any]:
    if not isinstance(step, dict):
        raise InvalidInput("a step must be a mapping", field=f"steps[{i}]")
    kind = step.get("kind")
    if kind not in STEP_KINDS:
        raise InvalidInput(
            f"unknown step kind {kind!r}", field=f"steps[{i}].kind", expected=", ".join(STEP_KINDS)
        )
    if kind == "wait":
        try:
            return Wait.model_validate(step).model_dump(exclude_none=True)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            field = f"steps[{i}]" + (f".{loc}" if loc else "")
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            raise InvalidInput(msg.removeprefix("Value error, "), field=field) from None
    action = {("type" if k == "kind" else k): v for k, v in step.items()}
    try:
        checked = rule_defs.actions([action], playbooks=False)[0]
    except InvalidInput as exc:
        field = (exc.field or "").replace("actions[0]", f"steps[{i}]", 1)
        message = exc.message.removeprefix(f"field {exc.field!r}: ")
        raise InvalidInput(message, field=field) from None
    checked["kind"] = checked.pop("type")
    return checked


def journey(data: Any) -> dict[str, Any]:
    """A whole journey definition validated (steps and exit conditions included)."""
    if not isinstance(data, dict):
        raise InvalidInput("a journey definition must be a mapping", expected="name, steps, ...")
    try:
        base = JourneyDefinition.model_validate(data).model_dump()
    except ValidationError as exc:
        raise_validation(exc)
    base["steps"] = [_step(i, s) for i, s in enumerate(base["steps"])]
    base["exit_conditions"] = [
        {k: v for k, v in c.items() if v is not None} for c in base["exit_conditions"]
    ]
    return base
