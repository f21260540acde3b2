"""Assignment rules: rule order, segments, round-robin fairness across runs, bulk owners."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.tasks import assignment, service
from keepwell.timeline import service as timeline
from tests.factories import make_customer
from tests.tasks.helpers import make_staff


def _owners(tasks) -> Counter:
    return Counter(t.owner_id for t in tasks)


def test_round_robin_is_fair_across_runs(db_session: Session) -> None:
    a, b, c = (make_staff(db_session, n) for n in ("A", "B", "C"))
    assignment.create_rule(db_session=db_session, name="everyone", assignee_ids=[a.id, b.id, c.id])
    customer = make_customer(db_session)
    made = []
    for run in (4, 3, 5):  # three separate runs of different sizes
        made += [
            service.create_task(db_session=db_session, customer_id=customer.id, title=f"t{i}")
            for i in range(run)
        ]
        db_session.commit()  # the position survives the transaction
        db_session.expire_all()
    assert [t.owner_id for t in made[:4]] == [a.id, b.id, c.id, a.id]
    assert _owners(made) == {a.id: 4, b.id: 4, c.id: 4}  # 12 tasks, 3 CSMs: exactly 4 each
    # counts never differ by more than one at any point
    for n in range(1, len(made) + 1):
        counts = _owners(made[:n])
        spread = [counts.get(x.id, 0) for x in (a, b, c)]
        assert max(spread) - min(spread) <= 1


def test_round_robin_skips_deactivated_assignees(db_session: Session) -> None:
    a, b = make_staff(db_session, "A"), make_staff(db_session, "B")
    assignment.create_rule(db_session=db_session, name="rr", assignee_ids=[a.id, b.id])
    customer = make_customer(db_session)
    b.is_active = False
    db_session.flush()
    tasks = [
        service.create_task(db_session=db_session, customer_id=customer.id, title=str(i))
        for i in range(3)
    ]
    assert [t.owner_id for t in tasks] == [a.id, a.id, a.id]
    a.is_active = False
    db_session.flush()
    nobody = service.create_task(db_session=db_session, customer_id=customer.id, title="x")
    assert nobody.owner_id is None


def test_rules_in_order_segment_then_customer_owner(db_session: Session) -> None:
    travel_csm, other_csm = make_staff(db_session, "T"), make_staff(db_session, "O")
    owner = make_staff(db_session, "Owner")
    assignment.create_rule(
        db_session=db_session,
        name="travel desk",
        assignee_ids=[travel_csm.id],
        segment_filter='industry in ["travel", "hospitality"]',
    )
    assignment.create_rule(db_session=db_session, name="owner", strategy="customer_owner")
    assignment.create_rule(db_session=db_session, name="fallback", assignee_ids=[other_csm.id])
    travel = make_customer(db_session, industry="travel", owner_id=owner.id)
    health = make_customer(db_session, industry="healthcare", owner_id=owner.id)
    orphan = make_customer(db_session, industry="retail")

    def create(c: Customer):
        return service.create_task(db_session=db_session, customer_id=c.id, title="x")

    assert create(travel).owner_id == travel_csm.id  # the first rule wins
    t = create(health)
    assert t.owner_id == owner.id and t.assignment_rule_id is not None
    assert create(orphan).owner_id == other_csm.id  # customer_owner yields nobody: next rule
    # an explicit owner is never overridden
    explicit = service.create_task(
        db_session=db_session, customer_id=travel.id, title="x", owner_id=other_csm.id
    )
    assert explicit.owner_id == other_csm.id
    names = [r.name for r in assignment.list_rules(db_session=db_session, target="tasks")]
    assert names == ["travel desk", "owner", "fallback"]


def test_assign_unowned_tasks_in_bulk(db_session: Session) -> None:
    c = make_customer(db_session)
    tasks = [
        service.create_task(db_session=db_session, customer_id=c.id, title=str(i)) for i in range(5)
    ]
    assert all(t.owner_id is None for t in tasks)
    a, b = make_staff(db_session, "A"), make_staff(db_session, "B")
    assignment.create_rule(db_session=db_session, name="rr", assignee_ids=[a.id, b.id])
    result = assignment.assign_unowned_tasks(db_session=db_session)
    assert result.assigned == 5 and result.unmatched == 0
    assert result.by_owner == {a.id: 3, b.id: 2}
    assert [t.owner_id for t in tasks] == [a.id, b.id, a.id, b.id, a.id]
    again = assignment.assign_unowned_tasks(db_session=db_session)
    assert again.assigned == 0  # idempotent: nothing left to assign
    titles = [i.title for i in timeline.for_customer(db_session=db_session, customer_id=c.id)]
    assert "Task assigned to A (rule rr): 0" in titles


def test_bulk_customer_owners_fair_and_dry_run(db_session: Session) -> None:
    a, b, c = (make_staff(db_session, n) for n in ("A", "B", "C"))
    travel_csm = make_staff(db_session, "T")
    owned = make_customer(db_session, owner_id=a.id)
    travel = [make_customer(db_session, industry="travel") for _ in range(2)]
    rest = [make_customer(db_session, industry="retail") for _ in range(5)]
    assignment.create_rule(
        db_session=db_session,
        name="travel",
        target="customers",
        assignee_ids=[travel_csm.id],
        segment_filter='industry = "travel"',
    )
    assignment.create_rule(
        db_session=db_session, name="all", target="customers", assignee_ids=[a.id, b.id, c.id]
    )
    preview = assignment.assign_customer_owners(db_session=db_session, dry_run=True)
    assert preview.dry_run and preview.assigned == 7 and preview.unmatched == 0
    assert preview.by_owner == {travel_csm.id: 2, a.id: 2, b.id: 2, c.id: 1}
    assert all(x.owner_id is None for x in travel + rest)  # nothing written
    done = assignment.assign_customer_owners(db_session=db_session)
    assert done.by_owner == preview.by_owner
    assert [x.owner_id for x in travel] == [travel_csm.id] * 2
    assert [x.owner_id for x in rest] == [a.id, b.id, c.id, a.id, b.id]
    assert owned.owner_id == a.id
    # a later run continues the rotation where it stopped: C is next
    late = [make_customer(db_session, industry="retail") for _ in range(2)]
    assignment.assign_customer_owners(db_session=db_session)
    assert [x.owner_id for x in late] == [c.id, a.id]
    totals = Counter(x.owner_id for x in rest + late)
    assert totals == {a.id: 3, b.id: 2, c.id: 2}
    items = timeline.for_customer(db_session=db_session, customer_id=rest[0].id)
    assert [(i.kind, i.title) for i in items] == [("owner", "Owner set to A (rule all)")]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": ""}, InvalidInput, "field 'name'"),
        ({"assignee_ids": []}, InvalidInput, "needs assignees"),
        ({"strategy": "random"}, InvalidInput, "unknown strategy 'random'"),
        ({"target": "deals"}, InvalidInput, "unknown target 'deals'"),
        ({"assignee_ids": [919191]}, NotFound, "no staff user with id 919191"),
        ({"segment_filter": 'shoe_size = "44"'}, InvalidInput, "shoe_size"),
        ({"segment_name": "nope"}, NotFound, "no segment 'nope'"),
        (
            {"segment_filter": 'industry = "travel"', "segment_name": "travel"},
            InvalidInput,
            "not both",
        ),
        (
            {"segment_filter": "industry = travel; DROP TABLE customers"},
            InvalidInput,
            "segment_filter",
        ),
        (
            {"strategy": "customer_owner", "target": "customers", "assignee_ids": []},
            InvalidInput,
            "only applies to tasks",
        ),
    ],
)
def test_create_rule_rejects_bad_input(db_session, kwargs, error, message) -> None:
    a = make_staff(db_session, "A")
    args = {"db_session": db_session, "name": "r", "assignee_ids": [a.id]} | kwargs
    with pytest.raises(error, match=message):
        assignment.create_rule(**args)
    assert assignment.list_rules(db_session=db_session) == []


def test_rule_names_unique_and_delete(db_session: Session) -> None:
    a = make_staff(db_session, "A")
    rule = assignment.create_rule(db_session=db_session, name="r", assignee_ids=[a.id])
    with pytest.raises(AlreadyExists):
        assignment.create_rule(db_session=db_session, name="r", assignee_ids=[a.id])
    assignment.delete_rule(db_session=db_session, rule_id=rule.id)
    assert assignment.list_rules(db_session=db_session) == []
    with pytest.raises(NotFound):
        assignment.delete_rule(db_session=db_session, rule_id=rule.id)


def test_rule_on_a_saved_segment(db_session: Session) -> None:
    from keepwell.segments import service as segments

    a, b = make_staff(db_session, "A"), make_staff(db_session, "B")
    segments.create_segment(
        db_session=db_session, name="travel firms", filter_text='industry = "travel"'
    )
    assignment.create_rule(
        db_session=db_session, name="seg", assignee_ids=[a.id], segment_name="travel firms"
    )
    assignment.create_rule(db_session=db_session, name="rest", assignee_ids=[b.id])
    travel, other = make_customer(db_session, industry="travel"), make_customer(db_session)
    t1 = service.create_task(db_session=db_session, customer_id=travel.id, title="x")
    t2 = service.create_task(db_session=db_session, customer_id=other.id, title="x")
    assert (t1.owner_id, t2.owner_id) == (a.id, b.id)
