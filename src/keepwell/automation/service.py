"""Alert rules and playbooks: define them, and :func:`run` them (fire, dedup, retry, audit).

A run evaluates each enabled rule's trigger, keeps the customers in the rule's audience,
drops occurrences already fired (``alert_firings`` is unique on rule + dedup key) and
customers still in the rule's cooldown, then runs the rule's actions for each new firing and
writes the firing (with every action's result) and a timeline entry. Actions that failed are
retried on the next run, without repeating the ones that succeeded. Finally the journeys
advance (:func:`keepwell.journeys.service.advance`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from keepwell.automation import actions as A
from keepwell.automation import definitions
from keepwell.automation.models import AlertFiring, AlertRule, Playbook
from keepwell.automation.triggers import TRIGGERS, Hit, TriggerContext
from keepwell.config import Settings
from keepwell.customers.models import Customer
from keepwell.errors import AlreadyExists, InvalidInput, KeepwellError, NotFound
from keepwell.models import row_id, utcnow
from keepwell.timeline.service import record

__all__ = [
    "MAX_ATTEMPTS",
    "FiringReport",
    "RunReport",
    "create_playbook",
    "create_rule",
    "definition",
    "delete_rule",
    "firing_counts",
    "get_playbook",
    "get_rule",
    "get_rule_or_raise",
    "history",
    "list_playbooks",
    "list_rules",
    "run",
    "set_enabled",
]

MAX_ATTEMPTS = 5
"""Attempts per action before a firing is marked ``gave_up``."""


# -- reports -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FiringReport:
    """One firing of a run (or, in a dry run, one that would happen)."""

    rule: str
    customer_id: int
    customer_name: str
    dedup_key: str
    reason: str
    status: str
    """``would fire`` (dry run), ``done``, ``failed`` (an action will be retried) or ``gave_up``."""
    errors: tuple[str, ...] = ()


@dataclass
class RunReport:
    """What one ``automation run`` did."""

    now: datetime
    dry_run: bool
    firings: list[FiringReport] = field(default_factory=list)
    retried: list[FiringReport] = field(default_factory=list)
    skipped_duplicate: int = 0
    skipped_cooldown: int = 0
    skipped_audience: int = 0
    rule_errors: dict[str, str] = field(default_factory=dict)
    journeys: Any = None
    """A :class:`keepwell.journeys.service.AdvanceReport` (None when journeys were not run)."""

    @property
    def fired(self) -> int:
        """New firings (would-be firings in a dry run)."""
        return len(self.firings)

    @property
    def did_nothing(self) -> bool:
        """True when the run fired, retried and advanced nothing."""
        journeys_idle = self.journeys is None or self.journeys.did_nothing
        return not self.firings and not self.retried and journeys_idle


# -- playbooks -------------------------------------------------------------------------------


def get_playbook(*, db_session: Session, name_or_id: str | int) -> Playbook | None:
    """A playbook by name or id, or None."""
    found_id = row_id(name_or_id)
    if found_id is not None and (found := db_session.get(Playbook, found_id)) is not None:
        return found
    return db_session.scalar(select(Playbook).where(Playbook.name == str(name_or_id)))


def list_playbooks(*, db_session: Session) -> list[Playbook]:
    """Every playbook, by name."""
    return list(db_session.scalars(select(Playbook).order_by(Playbook.name)))


def create_playbook(
    *,
    db_session: Session,
    name: str,
    actions: list[dict[str, Any]],
    description: str | None = None,
) -> Playbook:
    """Save a named action list (validated; playbooks cannot nest)."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("a playbook needs a name", field="name")
    checked = definitions.actions(actions, playbooks=False)
    if not checked:
        raise InvalidInput("a playbook needs at least one action", field="actions")
    _check_references(db_session, checked)
    if get_playbook(db_session=db_session, name_or_id=name) is not None:
        raise AlreadyExists(f"a playbook named {name!r} already exists")
    playbook = Playbook(name=name, description=description, actions=checked)
    db_session.add(playbook)
    db_session.flush()
    return playbook


# -- rules ---------------------------------------------------------------------------------


def get_rule(*, db_session: Session, name_or_id: str | int) -> AlertRule | None:
    """A rule by name or id, or None."""
    found_id = row_id(name_or_id)
    if found_id is not None and (found := db_session.get(AlertRule, found_id)) is not None:
        return found
    return db_session.scalar(select(AlertRule).where(AlertRule.name == str(name_or_id)))


def get_rule_or_raise(*, db_session: Session, name_or_id: str | int) -> AlertRule:
    """A rule by name or id; :class:`NotFound` when there is none."""
    rule = get_rule(db_session=db_session, name_or_id=name_or_id)
    if rule is None:
        raise NotFound(f"no alert rule {name_or_id!r}", hint="list them with `keepwell rules list`")
    return rule


def list_rules(*, db_session: Session) -> list[AlertRule]:
    """Every rule, by name."""
    return list(db_session.scalars(select(AlertRule).order_by(AlertRule.name)))


def _check_references(db_session: Session, checked: list[dict[str, Any]]) -> None:
    from keepwell.journeys.service import get_journey

    for i, action in enumerate(checked):
        if action["type"] == "playbook" and not get_playbook(
            db_session=db_session, name_or_id=action["name"]
        ):
            raise InvalidInput(f"no playbook named {action['name']!r}", field=f"actions[{i}].name")
        if action["type"] == "enrol" and not get_journey(
            db_session=db_session, name_or_id=action["journey"]
        ):
            raise InvalidInput(
                f"no journey named {action['journey']!r}",
                field=f"actions[{i}].journey",
                hint="create it, or run `keepwell journeys install-defaults`",
            )


def _check_audience(db_session: Session, audience: str | None) -> None:
    if not audience:
        return
    try:
        from keepwell.segments.service import matching_customer_ids
    except ImportError:
        raise InvalidInput(
            "audience filters need keepwell.segments, which is not installed", field="audience"
        ) from None
    try:
        matching_customer_ids(db_session=db_session, filter_text=audience)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="audience") from None


def create_rule(
    *, db_session: Session, definition: dict[str, Any], created_by: int | None = None
) -> AlertRule:
    """Validate ``definition`` (see :mod:`keepwell.automation.definitions`) and save it."""
    checked = definitions.rule(definition)
    _check_references(db_session, checked["actions"])
    _check_audience(db_session, checked["audience"])
    if get_rule(db_session=db_session, name_or_id=checked["name"]) is not None:
        raise AlreadyExists(f"an alert rule named {checked['name']!r} already exists")
    rule = AlertRule(**checked, created_by=created_by)
    db_session.add(rule)
    db_session.flush()
    return rule


def set_enabled(*, db_session: Session, rule: AlertRule, enabled: bool) -> AlertRule:
    """Enable or disable a rule."""
    rule.enabled = enabled
    db_session.flush()
    return rule


def delete_rule(*, db_session: Session, rule: AlertRule) -> None:
    """Delete a rule and its firing history."""
    db_session.delete(rule)
    db_session.flush()


def history(*, db_session: Session, rule: AlertRule, limit: int = 50) -> list[AlertFiring]:
    """The rule's most recent firings, newest first."""
    return list(
        db_session.scalars(
            select(AlertFiring)
            .options(joinedload(AlertFiring.customer))
            .where(AlertFiring.rule_id == rule.id)
            .order_by(AlertFiring.fired_at.desc(), AlertFiring.id.desc())
            .limit(limit)
        )
    )


def definition(rule: AlertRule, *, mask_secrets: bool = True) -> dict[str, Any]:
    """The rule as a definition (what ``create_rule`` takes); webhook secrets masked."""

    def mask(action: dict[str, Any]) -> dict[str, Any]:
        return {**action, "secret": "***"} if mask_secrets and action.get("secret") else action

    return {
        "id": rule.id,
        "name": rule.name,
        "description": rule.description,
        "enabled": rule.enabled,
        "trigger": rule.trigger,
        "params": rule.params,
        "audience": rule.audience,
        "cooldown_days": rule.cooldown_days,
        "actions": [mask(a) for a in rule.actions],
    }


def firing_counts(*, db_session: Session) -> dict[int, int]:
    """Rule id -> how many times it has fired."""
    rows = db_session.execute(
        select(AlertFiring.rule_id, func.count()).group_by(AlertFiring.rule_id)
    ).all()
    return {rule_id: n for rule_id, n in rows}


# -- running ---------------------------------------------------------------------------------


def _expand(db_session: Session, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rule's actions with each playbook reference replaced by the playbook's actions."""
    out: list[dict[str, Any]] = []
    for action in items:
        if action["type"] != "playbook":
            out.append(action)
            continue
        playbook = get_playbook(db_session=db_session, name_or_id=action["name"])
        if playbook is None:
            out.append({**action, "missing": True})
        else:
            out.extend(playbook.actions)
    return out


def _perform(
    db_session: Session, settings: Settings, firing: AlertFiring, rule: AlertRule, now: datetime
) -> list[str]:
    """Run the firing's actions that are not done yet; update their results; return errors."""
    customer = db_session.get(Customer, firing.customer_id)
    results = [dict(item) for item in firing.results]
    errors = []
    for i, item in enumerate(results):
        if item["status"] == "done":
            continue
        action = item["action"]
        item["attempts"] = item.get("attempts", 0) + 1
        ctx = A.ActionContext(
            customer=customer,
            key=f"alert:{firing.rule_id}:{firing.dedup_key}:{i}",
            reason=firing.reason,
            now=now,
            rule=rule.name,
            source=f"rule:{rule.id}",
        )
        try:
            if action.get("missing"):
                raise NotFound(f"playbook {action['name']!r} no longer exists")
            item["result"] = A.execute(
                db_session=db_session, settings=settings, action=action, ctx=ctx
            )
            item["status"], item["error"] = "done", None
        except Exception as exc:  # any failure is recorded and retried, never fatal to a run
            message = (
                exc.message if isinstance(exc, KeepwellError) else f"{type(exc).__name__}: {exc}"
            )
            item["status"], item["error"] = "failed", message
            errors.append(f"{A.describe(action)}: {message}")
    firing.results = results
    firing.last_attempt_at = now
    if all(item["status"] == "done" for item in results):
        firing.status = "done"
    elif max(item["attempts"] for item in results) >= MAX_ATTEMPTS:
        firing.status = "gave_up"
    else:
        firing.status = "failed"
    db_session.flush()
    return errors


def _report(firing: AlertFiring, rule: AlertRule, customer: Customer, errors) -> FiringReport:
    return FiringReport(
        rule=rule.name,
        customer_id=customer.id,
        customer_name=customer.name,
        dedup_key=firing.dedup_key,
        reason=firing.reason,
        status=firing.status,
        errors=tuple(errors),
    )


def _retry_failed(
    db_session: Session, settings: Settings, rules: list[AlertRule], now: datetime, report
) -> None:
    by_id = {r.id: r for r in rules}
    if not by_id:
        return
    failed = db_session.scalars(
        select(AlertFiring)
        .where(AlertFiring.status == "failed", AlertFiring.rule_id.in_(by_id))
        .order_by(AlertFiring.id)
    ).all()
    for firing in failed:
        rule = by_id[firing.rule_id]
        errors = _perform(db_session, settings, firing, rule, now)
        customer = db_session.get(Customer, firing.customer_id)
        report.retried.append(_report(firing, rule, customer, errors))


def _audience(db_session: Session, rule: AlertRule, now: datetime) -> set[int] | None:
    if not rule.audience:
        return None
    from keepwell.segments.service import matching_customer_ids

    ids = matching_customer_ids(db_session=db_session, filter_text=rule.audience, now=now)
    return set(db_session.scalars(ids))


def _load_customers(db_session: Session, ids: set[int]) -> dict[int, Customer]:
    """The customers with these ids, loaded in a few queries (not one per firing)."""
    out: dict[int, Customer] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        out.update(
            (c.id, c) for c in db_session.scalars(select(Customer).where(Customer.id.in_(chunk)))
        )
    return out


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _evaluate(
    db_session: Session,
    settings: Settings,
    rule: AlertRule,
    ctx: TriggerContext,
    report: RunReport,
) -> None:
    now, dry_run = ctx.now, report.dry_run
    try:  # a trigger that cannot be evaluated (missing domain, bad filter) skips the rule
        with db_session.begin_nested():
            hits: list[Hit] = TRIGGERS[rule.trigger](ctx, rule.params)
            audience = _audience(db_session, rule, now)
    except (KeepwellError, ImportError) as exc:
        report.rule_errors[rule.name] = getattr(exc, "message", None) or str(exc)
        return
    if audience is not None:
        kept = [h for h in hits if h.customer_id in audience]
        report.skipped_audience += len(hits) - len(kept)
        hits = kept
    unique = {f"{h.customer_id}:{h.occurrence}": h for h in hits}
    existing: set[str] = set()
    for chunk in _chunks(sorted(unique)):
        existing.update(
            db_session.scalars(
                select(AlertFiring.dedup_key).where(
                    AlertFiring.rule_id == rule.id, AlertFiring.dedup_key.in_(chunk)
                )
            )
        )
    last_fired: dict[int, datetime] = {}
    if rule.cooldown_days:
        last_fired = dict(
            db_session.execute(
                select(AlertFiring.customer_id, func.max(AlertFiring.fired_at))
                .where(AlertFiring.rule_id == rule.id)
                .group_by(AlertFiring.customer_id)
            ).all()
        )
    cooldown = timedelta(days=rule.cooldown_days)
    expanded = _expand(db_session, rule.actions)
    customers = _load_customers(
        db_session, {h.customer_id for k, h in unique.items() if k not in existing}
    )
    for key in sorted(unique, key=lambda k: (unique[k].customer_id, k)):
        hit = unique[key]
        if key in existing:
            report.skipped_duplicate += 1
            continue
        last = last_fired.get(hit.customer_id)
        if rule.cooldown_days and last is not None and now - last < cooldown:
            report.skipped_cooldown += 1
            continue
        customer = customers[hit.customer_id]
        last_fired[hit.customer_id] = now
        if dry_run:
            report.firings.append(
                FiringReport(rule.name, customer.id, customer.name, key, hit.reason, "would fire")
            )
            continue
        firing = AlertFiring(
            rule_id=rule.id,
            customer_id=hit.customer_id,
            dedup_key=key,
            fired_at=now,
            last_attempt_at=now,
            reason=hit.reason,
            status="failed",
            attempts=1,
            results=[
                {"action": a, "status": "pending", "attempts": 0, "result": None, "error": None}
                for a in expanded
            ],
        )
        try:
            with db_session.begin_nested():
                db_session.add(firing)
                db_session.flush()
        except IntegrityError:  # another run fired it a moment ago
            report.skipped_duplicate += 1
            continue
        errors = _perform(db_session, settings, firing, rule, now)
        record(
            db_session=db_session,
            customer_id=customer.id,
            kind="alert",
            title=f"Alert: {rule.name}: {hit.reason}"[:500],
            detail={
                "rule": rule.name,
                "rule_id": rule.id,
                "firing_id": firing.id,
                "reason": hit.reason,
                "actions": [A.describe(a) for a in expanded],
                "errors": errors,
            },
            occurred_at=now,
        )
        report.firings.append(_report(firing, rule, customer, errors))


def run(
    *,
    db_session: Session,
    settings: Settings,
    now: datetime | None = None,
    dry_run: bool = False,
    rule: str | int | None = None,
) -> RunReport:
    """Evaluate the enabled rules (or just ``rule``, even when disabled) and advance journeys.

    Idempotent: a second run right after the first fires nothing (dedup keys), and a
    ``dry_run`` lists who would be hit and why and writes nothing. With ``rule`` given,
    journeys are not advanced. The caller commits.
    """
    now = now or utcnow()
    if now.tzinfo is None:
        raise InvalidInput("now must be time-zone aware", field="now")
    report = RunReport(now=now, dry_run=dry_run)
    if rule is not None:
        rules = [get_rule_or_raise(db_session=db_session, name_or_id=rule)]
    else:
        rules = list(
            db_session.scalars(select(AlertRule).where(AlertRule.enabled).order_by(AlertRule.id))
        )
    ctx = TriggerContext(db_session=db_session, settings=settings, now=now)
    if not dry_run:
        _retry_failed(db_session, settings, rules, now, report)
    for item in rules:
        _evaluate(db_session, settings, item, ctx, report)
    if rule is None:
        from keepwell.journeys.service import advance

        report.journeys = advance(
            db_session=db_session, settings=settings, now=now, dry_run=dry_run
        )
    return report
