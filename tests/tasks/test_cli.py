"""`keepwell tasks ...` end to end on SQLite and PostgreSQL: create, list, mine, done, assign."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from keepwell.cli import app
from keepwell.customers.models import Customer
from keepwell.tasks.models import Task, TaskStatus
from tests.factories import make_customer
from tests.tasks.helpers import make_staff, migrated_home, seeded

runner = CliRunner()


@pytest.fixture
def url(monkeypatch, tmp_path, isolated_database_url) -> str:
    url = migrated_home(monkeypatch, tmp_path, isolated_database_url)
    with seeded(url) as s:
        make_customer(s, external_id="acme", name="Acme", industry="travel")
        make_customer(s, external_id="bolt", name="Bolt", industry="retail")
        make_staff(s, "Ana", email="ana@example.com")
        make_staff(s, "Bo", email="bo@example.com")
    return url


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def test_create_list_mine_done(url) -> None:
    ok = run(
        "tasks",
        "create",
        "acme",
        "Call about renewal",
        "--owner",
        "ana@example.com",
        "--due",
        "2026-05-01",
        "--priority",
        "high",
    )
    assert ok.exit_code == 0, ok.output
    assert "Created task" in ok.output and "for ana@example.com" in ok.output
    other = run("tasks", "create", "bolt", "Send deck", "--due", "2026-04-01")
    assert other.exit_code == 0 and "unassigned" in other.output

    listed = run("tasks", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.index("Send deck") < listed.output.index("Call about renewal")
    only_ana = run("tasks", "list", "--owner", "ana@example.com")
    assert "Call about renewal" in only_ana.output and "Send deck" not in only_ana.output
    by_customer = run("tasks", "list", "--customer", "bolt", "--due-before", "2026-04-02")
    assert "Send deck" in by_customer.output and "Call about" not in by_customer.output

    mine = run("tasks", "mine", "--user", "ana@example.com")
    assert mine.exit_code == 0 and "Call about renewal" in mine.output
    with seeded(url) as s:
        task_id = s.scalars(select(Task.id).where(Task.title == "Call about renewal")).one()
    done = run("tasks", "done", str(task_id))
    assert done.exit_code == 0 and "done: Call about renewal" in done.output
    again = run("tasks", "done", str(task_id))
    assert again.exit_code == 1 and "already done" in again.output
    assert "Nothing to do" in run("tasks", "mine", "--user", "ana@example.com").output
    with seeded(url) as s:
        assert s.get(Task, task_id).status is TaskStatus.done


def test_bad_input_is_one_clear_line(url) -> None:
    cases = [
        (("tasks", "create", "acme", ""), "field 'title'"),
        (("tasks", "create", "acme", "x", "--due", "tomorrow"), "field 'due_at'"),
        (("tasks", "create", "acme", "x", "--owner", "zed@example.com"), "no staff user"),
        (("tasks", "create", "nobody", "x"), "no customer 'nobody'"),
        (("tasks", "done", "424242"), "no task with id 424242"),
        (("tasks", "assign", "1"), "--to EMAIL"),
        (("tasks", "list", "--due-before", "05/01"), "field 'due_before'"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
    bad_priority = run("tasks", "create", "acme", "x", "--priority", "asap")
    assert bad_priority.exit_code == 2 and "asap" in bad_priority.output
    with seeded(url) as s:
        assert s.scalars(select(Task)).all() == []


def test_rules_and_bulk_assign(url) -> None:
    rule = run(
        "tasks",
        "rules",
        "add",
        "travel desk",
        "--to",
        "ana@example.com",
        "--where",
        'industry = "travel"',
    )
    assert rule.exit_code == 0, rule.output
    rr = run(
        "tasks",
        "rules",
        "add",
        "everyone",
        "--to",
        "ana@example.com",
        "--to",
        "bo@example.com",
        "--for",
        "customers",
    )
    assert rr.exit_code == 0, rr.output
    bad = run("tasks", "rules", "add", "oops", "--to", "ana@example.com", "--where", "shoe = 1")
    assert bad.exit_code == 1 and "unknown field 'shoe'" in bad.output
    listed = run("tasks", "rules", "list")
    assert "travel desk" in listed.output and "everyone" in listed.output

    created = run("tasks", "create", "acme", "Check usage")
    assert "for ana@example.com" in created.output  # the travel rule
    preview = run("tasks", "assign", "--customers", "--dry-run")
    assert preview.exit_code == 0 and "Would assign 2 customers" in preview.output
    with seeded(url) as s:
        assert s.scalars(select(Customer.owner_id)).all() == [None, None]
    done = run("tasks", "assign", "--customers")
    assert "Assigned 2 customers" in done.output
    with seeded(url) as s:
        owners = s.execute(
            select(Customer.external_id, Customer.owner_id).order_by(Customer.id)
        ).all()
        assert len({o for _, o in owners}) == 2  # one each, round-robin

    unowned = run("tasks", "create", "bolt", "Follow up")
    assert "unassigned" in unowned.output  # bolt is retail: no task rule covers it
    with seeded(url) as s:
        task_id = s.scalars(select(Task.id).where(Task.title == "Follow up")).one()
    moved = run("tasks", "assign", str(task_id), "--to", "bo@example.com")
    assert moved.exit_code == 0 and "assigned to bo@example.com" in moved.output
    auto = run("tasks", "assign", "--auto")
    assert "Assigned 0 tasks" in auto.output
