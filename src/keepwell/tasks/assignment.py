"""Assignment rules: who gets a task or a customer that has no owner.

Rules of a target (``tasks`` or ``customers``) are tried in ``position`` order; the first
whose audience contains the customer and that yields an owner wins. ``round_robin`` cycles
through its assignees and stores its position, so turns stay fair across runs and processes
(the rule row is locked while a turn is taken); deactivated assignees are skipped.
``customer_owner`` gives a task to its customer's owner.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.tasks import audience
from keepwell.tasks.models import AssignmentRule, RuleStrategy, RuleTarget, Task
from keepwell.tasks.staff import get_staff_or_raise
from keepwell.timeline import service as timeline
from keepwell.users.models import StaffUser


@dataclass(frozen=True)
class AssignmentResult:
    """What a bulk assignment did (or would do, on a dry run).

    ``by_owner`` maps staff user id to how many were given to them; ``unmatched`` counts the
    tasks/customers no rule covered.
    """

    assigned: int
    unmatched: int
    by_owner: dict[int, int] = field(default_factory=dict)
    dry_run: bool = False


def _target(value: RuleTarget | str) -> RuleTarget:
    try:
        return RuleTarget(value)
    except ValueError:
        raise InvalidInput(
            f"unknown target {value!r}", field="target", expected="tasks or customers"
        ) from None


def _strategy(value: RuleStrategy | str) -> RuleStrategy:
    try:
        return RuleStrategy(value)
    except ValueError:
        raise InvalidInput(
            f"unknown strategy {value!r}",
            field="strategy",
            expected="round_robin or customer_owner",
        ) from None


def create_rule(
    *,
    db_session: Session,
    name: str,
    assignee_ids: list[int] | tuple[int, ...] = (),
    strategy: RuleStrategy | str = RuleStrategy.round_robin,
    target: RuleTarget | str = RuleTarget.tasks,
    segment_filter: str | None = None,
    segment_name: str | None = None,
    position: int | None = None,
) -> AssignmentRule:
    """Add an assignment rule (at the end of its target's list unless ``position`` is given).

    ``segment_filter`` (filter text) or ``segment_name`` (a saved segment) is the audience;
    neither means every customer.
    """
    clean = (name or "").strip()
    if not clean or len(clean) > 120:
        raise InvalidInput("a rule needs a name of 1-120 characters", field="name")
    kind, how = _target(target), _strategy(strategy)
    if db_session.scalar(select(AssignmentRule.id).where(AssignmentRule.name == clean)):
        raise AlreadyExists(f"an assignment rule named {clean!r} exists")
    ids = list(dict.fromkeys(assignee_ids))
    if how is RuleStrategy.round_robin and not ids:
        raise InvalidInput(
            "a round-robin rule needs assignees", field="assignee_ids", expected="staff user ids"
        )
    if how is RuleStrategy.customer_owner:
        if kind is RuleTarget.customers:
            raise InvalidInput(
                "customer_owner only applies to tasks", field="strategy", expected="round_robin"
            )
        if ids:
            raise InvalidInput("customer_owner takes no assignees", field="assignee_ids")
    for staff_id in ids:
        get_staff_or_raise(db_session=db_session, staff_id=staff_id, field="assignee_ids")
    filter_text = segment_filter.strip() if segment_filter is not None else None
    audience.check(db_session=db_session, segment_filter=filter_text, segment_name=segment_name)
    if position is None:
        last = db_session.scalar(
            select(func.max(AssignmentRule.position)).where(AssignmentRule.target == kind)
        )
        position = (last or 0) + 10
    rule = AssignmentRule(
        name=clean,
        position=position,
        target=kind,
        segment_filter=filter_text,
        segment_name=segment_name,
        strategy=how,
        assignee_ids=ids,
        next_index=0,
        is_active=True,
    )
    db_session.add(rule)
    db_session.flush()
    return rule


def list_rules(
    *, db_session: Session, target: RuleTarget | str | None = None, active_only: bool = False
) -> list[AssignmentRule]:
    """Assignment rules in the order they are tried."""
    query = select(AssignmentRule)
    if target is not None:
        query = query.where(AssignmentRule.target == _target(target))
    if active_only:
        query = query.where(AssignmentRule.is_active.is_(True))
    order = (AssignmentRule.target, AssignmentRule.position, AssignmentRule.id)
    return list(db_session.scalars(query.order_by(*order)))


def get_rule_or_raise(*, db_session: Session, rule_id: int) -> AssignmentRule:
    """The rule with this id, or :class:`NotFound`."""
    rule = db_session.get(AssignmentRule, rule_id)
    if rule is None:
        raise NotFound(f"no assignment rule with id {rule_id}")
    return rule


def delete_rule(*, db_session: Session, rule_id: int) -> None:
    """Remove a rule (tasks it assigned keep their owner)."""
    db_session.delete(get_rule_or_raise(db_session=db_session, rule_id=rule_id))
    db_session.flush()


def _covers(db_session: Session, rule: AssignmentRule, customer_id: int) -> bool:
    ids = audience.customer_ids(
        db_session=db_session, segment_filter=rule.segment_filter, segment_name=rule.segment_name
    )
    if ids is None:
        return True
    query = select(Customer.id).where(Customer.id == customer_id, Customer.id.in_(ids))
    return db_session.scalar(query) is not None


def _active_staff(db_session: Session, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    query = select(StaffUser.id).where(StaffUser.id.in_(ids), StaffUser.is_active.is_(True))
    return set(db_session.scalars(query))


def _turns(rule: AssignmentRule, active: set[int], start: int):
    """Assignees from ``start`` on, cycling, skipping inactive ones: (staff id, next index)."""
    ids = rule.assignee_ids
    if not ids or not active & set(ids):
        return
    index = start % len(ids)
    while True:
        staff_id = ids[index]
        index = (index + 1) % len(ids)
        if staff_id in active:
            yield staff_id, index


def _take_turn(db_session: Session, rule: AssignmentRule) -> int | None:
    locked = db_session.scalars(
        select(AssignmentRule)
        .where(AssignmentRule.id == rule.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    turn = next(
        _turns(locked, _active_staff(db_session, locked.assignee_ids), locked.next_index), None
    )
    if turn is None:
        return None
    locked.next_index = turn[1]
    db_session.flush()
    return turn[0]


def _owner_for(db_session: Session, rule: AssignmentRule, customer_id: int) -> int | None:
    if rule.strategy is RuleStrategy.customer_owner:
        owner_id = db_session.scalar(select(Customer.owner_id).where(Customer.id == customer_id))
        if owner_id is not None and _active_staff(db_session, [owner_id]):
            return owner_id
        return None
    return _take_turn(db_session, rule)


def assign_task_by_rules(*, db_session: Session, task: Task) -> AssignmentRule | None:
    """Give an unowned task an owner by the first matching task rule; the rule used, or None.

    Does not write the timeline (the caller records what happened to the task).
    """
    if task.owner_id is not None:
        return None
    for rule in list_rules(db_session=db_session, target=RuleTarget.tasks, active_only=True):
        if not _covers(db_session, rule, task.customer_id):
            continue
        owner_id = _owner_for(db_session, rule, task.customer_id)
        if owner_id is not None:
            task.owner_id = owner_id
            task.assignment_rule_id = rule.id
            db_session.flush()
            return rule
    return None


def assign_unowned_tasks(*, db_session: Session, limit: int = 10_000) -> AssignmentResult:
    """Run the task rules over every open task without an owner (oldest first)."""
    from keepwell.tasks.service import unowned_open_tasks

    counts: Counter[int] = Counter()
    unmatched = 0
    for task in unowned_open_tasks(db_session=db_session, limit=limit):
        rule = assign_task_by_rules(db_session=db_session, task=task)
        if rule is None:
            unmatched += 1
            continue
        counts[task.owner_id] += 1
        owner = db_session.get(StaffUser, task.owner_id)
        timeline.record(
            db_session=db_session,
            customer_id=task.customer_id,
            kind="task",
            title=f"Task assigned to {owner.name} (rule {rule.name}): {task.title}",
            detail={"task_id": task.id, "owner_id": task.owner_id, "rule_id": rule.id},
        )
    return AssignmentResult(
        assigned=sum(counts.values()), unmatched=unmatched, by_owner=dict(counts)
    )


def _expire_owners(db_session: Session, customer_ids: set[int]) -> None:
    """Make loaded Customer objects re-read the owner the bulk UPDATE wrote."""
    for obj in list(db_session.identity_map.values()):
        if isinstance(obj, Customer) and obj.id in customer_ids:
            db_session.expire(obj, ["owner_id", "owner"])


def assign_customer_owners(*, db_session: Session, dry_run: bool = False) -> AssignmentResult:
    """Give every customer without an owner one, by the customer rules in order.

    On a dry run nothing is written (not even the round-robin positions); the result says
    who would get how many.
    """
    unowned = select(Customer.id).where(Customer.owner_id.is_(None))
    remaining = set(db_session.scalars(unowned))
    total = len(remaining)
    counts: Counter[int] = Counter()
    for rule in list_rules(db_session=db_session, target=RuleTarget.customers, active_only=True):
        if not remaining:
            break
        ids = audience.customer_ids(
            db_session=db_session,
            segment_filter=rule.segment_filter,
            segment_name=rule.segment_name,
        )
        query = unowned if ids is None else unowned.where(Customer.id.in_(ids))
        matched = [
            cid for cid in db_session.scalars(query.order_by(Customer.id)) if cid in remaining
        ]
        if not matched:
            continue
        if not dry_run:  # lock the rule's round-robin position for the whole batch
            db_session.scalars(
                select(AssignmentRule)
                .where(AssignmentRule.id == rule.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
        turns = _turns(rule, _active_staff(db_session, rule.assignee_ids), rule.next_index)
        given: dict[int, list[int]] = defaultdict(list)
        next_index = rule.next_index
        for customer_id, turn in zip(matched, turns, strict=False):
            staff_id, next_index = turn
            given[staff_id].append(customer_id)
            remaining.discard(customer_id)
        for staff_id, customer_ids in given.items():
            counts[staff_id] += len(customer_ids)
            if dry_run:
                continue
            for start in range(0, len(customer_ids), 500):
                chunk = customer_ids[start : start + 500]
                db_session.execute(
                    update(Customer).where(Customer.id.in_(chunk)).values(owner_id=staff_id)
                )
            name = db_session.get(StaffUser, staff_id).name
            for customer_id in customer_ids:
                timeline.record(
                    db_session=db_session,
                    customer_id=customer_id,
                    kind="owner",
                    title=f"Owner set to {name} (rule {rule.name})",
                    detail={"owner_id": staff_id, "rule_id": rule.id},
                )
        if not dry_run:
            rule.next_index = next_index
            db_session.flush()
            _expire_owners(db_session, {cid for ids in given.values() for cid in ids})
    assigned = sum(counts.values())
    return AssignmentResult(
        assigned=assigned, unmatched=total - assigned, by_owner=dict(counts), dry_run=dry_run
    )


__all__ = [
    "AssignmentResult",
    "assign_customer_owners",
    "assign_task_by_rules",
    "assign_unowned_tasks",
    "create_rule",
    "delete_rule",
    "get_rule_or_raise",
    "list_rules",
]
