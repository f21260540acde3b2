"""`keepwell tasks ...`: list, create, complete and assign tasks; manage assignment rules."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work
from keepwell.errors import InvalidInput
from keepwell.tasks.models import RuleStrategy, RuleTarget, Task, TaskPriority, TaskStatus

app = typer.Typer(help="Tasks for staff: list, create, done, assign, mine.", no_args_is_help=True)
rules_app = typer.Typer(
    help="Assignment rules: who gets unowned tasks and customers.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")

PRIORITY_STYLE = {"urgent": "bold red", "high": "yellow", "normal": "", "low": "dim"}
UserOption = Annotated[
    str,
    typer.Option("--user", envvar="KEEPWELL_USER", help="Your staff e-mail (or KEEPWELL_USER)."),
]


def _staff_id(db_session, email: str | None) -> int | None:
    from keepwell.tasks.staff import staff_by_email_or_raise

    if email is None:
        return None
    return staff_by_email_or_raise(db_session=db_session, email=email).id


def _customer_id(db_session, ref: str | None) -> int | None:
    from keepwell.customers.service import get_or_raise

    return None if ref is None else get_or_raise(db_session=db_session, ref=ref).id


def _table(db_session, tasks: list[Task], title: str) -> Table:
    from keepwell.customers.models import Customer
    from keepwell.tasks.service import is_overdue
    from keepwell.users.models import StaffUser

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    # short columns keep their full width on a narrow terminal; owner and title fold
    widths = {"id": 3, "due": 11, "priority": 8, "status": 11, "customer": 8}
    for col in ("id", "due", "priority", "status", "customer", "owner", "title"):
        table.add_column(col, no_wrap=col in widths, min_width=widths.get(col), overflow="fold")
    for t in tasks:
        customer = db_session.get(Customer, t.customer_id)
        owner = db_session.get(StaffUser, t.owner_id) if t.owner_id else None
        due = f"{t.due_at:%Y-%m-%d}" if t.due_at else ""
        if is_overdue(t):
            due = f"[bold red]{due}![/]"
        style = PRIORITY_STYLE[t.priority.value]
        table.add_row(
            str(t.id),
            due,
            f"[{style}]{t.priority.value}[/]" if style else t.priority.value,
            t.status.value,
            customer.external_id,
            owner.email if owner else "",
            t.title,
        )
    return table


@app.command("list")
@handle_errors
def list_command(
    owner: Annotated[str | None, typer.Option(help="Owner's e-mail.")] = None,
    status: Annotated[TaskStatus | None, typer.Option(help="Only this status.")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer external id (or #id).")] = None,
    overdue: Annotated[
        bool | None, typer.Option("--overdue/--not-overdue", help="Only (not) overdue tasks.")
    ] = None,
    due_before: Annotated[
        str | None, typer.Option("--due-before", help="Due before this day (YYYY-MM-DD).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
) -> None:
    """List tasks, soonest due first."""
    from keepwell.tasks import service

    with unit_of_work(load_settings()) as db_session:
        tasks = service.list_tasks(
            db_session=db_session,
            owner_id=_staff_id(db_session, owner),
            status=status,
            customer_id=_customer_id(db_session, customer),
            overdue=overdue,
            due_before=due_before,
            limit=limit,
            offset=offset,
        )
        console.print(_table(db_session, tasks, f"Tasks ({len(tasks)} shown)"))
    if not tasks:
        console.print("[dim]No tasks match.[/]")


@app.command("create")
@handle_errors
def create_command(
    customer: Annotated[str, typer.Argument(help="Customer external id (or #id).")],
    title: Annotated[str, typer.Argument(help="What to do.")],
    description: Annotated[str | None, typer.Option(help="Details.")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Owner's e-mail (default: the assignment rules).")
    ] = None,
    due: Annotated[
        str | None, typer.Option(help="Due day YYYY-MM-DD or ISO date-time with offset.")
    ] = None,
    priority: Annotated[TaskPriority, typer.Option(help="Priority.")] = TaskPriority.normal,
) -> None:
    """Create a task about a customer."""
    from keepwell.tasks import service

    with unit_of_work(load_settings()) as db_session:
        task = service.create_task(
            db_session=db_session,
            customer_id=_customer_id(db_session, customer),
            title=title,
            description=description,
            owner_id=_staff_id(db_session, owner),
            due_at=due,
            priority=priority,
        )
        owner_text = _owner_text(db_session, task)
        console.print(f"Created task [bold]{task.id}[/] ({task.priority.value}){owner_text}.")


def _owner_text(db_session, task: Task) -> str:
    from keepwell.users.models import StaffUser

    if task.owner_id is None:
        return ", unassigned"
    return f" for {db_session.get(StaffUser, task.owner_id).email}"


@app.command("done")
@handle_errors
def done_command(task_id: Annotated[int, typer.Argument(help="Task id.")]) -> None:
    """Mark a task done."""
    from keepwell.tasks import service

    with unit_of_work(load_settings()) as db_session:
        task = service.complete_task(db_session=db_session, task_id=task_id)
        console.print(f"Task {task.id} done: {task.title}")


@app.command("cancel")
@handle_errors
def cancel_command(task_id: Annotated[int, typer.Argument(help="Task id.")]) -> None:
    """Cancel a task."""
    from keepwell.tasks import service

    with unit_of_work(load_settings()) as db_session:
        task = service.cancel_task(db_session=db_session, task_id=task_id)
        console.print(f"Task {task.id} cancelled: {task.title}")


@app.command("reopen")
@handle_errors
def reopen_command(task_id: Annotated[int, typer.Argument(help="Task id.")]) -> None:
    """Reopen a done or cancelled task."""
    from keepwell.tasks import service

    with unit_of_work(load_settings()) as db_session:
        task = service.reopen_task(db_session=db_session, task_id=task_id)
        console.print(f"Task {task.id} reopened: {task.title}")


@app.command("assign")
@handle_errors
def assign_command(
    task_id: Annotated[int | None, typer.Argument(help="Task id (with --to).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="New owner's e-mail.")] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Run the task rules over all unowned open tasks.")
    ] = False,
    customers: Annotated[
        bool, typer.Option("--customers", help="Give customers without an owner one, by rule.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --customers: only show who would get what.")
    ] = False,
) -> None:
    """Assign one task (TASK_ID --to EMAIL), or assign in bulk by rules (--auto, --customers)."""
    from keepwell.tasks import assignment, service

    modes = (task_id is not None) + auto + customers
    if modes != 1 or (task_id is not None and to is None):
        raise InvalidInput(
            "give TASK_ID --to EMAIL, or --auto, or --customers",
            field="assign",
            hint="e.g. `keepwell tasks assign 12 --to ana@example.com`",
        )
    with unit_of_work(load_settings()) as db_session:
        if task_id is not None:
            task = service.assign_task(
                db_session=db_session, task_id=task_id, owner_id=_staff_id(db_session, to)
            )
            console.print(f"Task {task.id} assigned to {to}.")
            return
        if auto:
            result = assignment.assign_unowned_tasks(db_session=db_session)
            what = "tasks"
        else:
            result = assignment.assign_customer_owners(db_session=db_session, dry_run=dry_run)
            what = "customers"
        _print_result(db_session, result, what)


def _print_result(db_session, result, what: str) -> None:
    from keepwell.users.models import StaffUser

    verb = "Would assign" if result.dry_run else "Assigned"
    console.print(f"{verb} {result.assigned} {what}; {result.unmatched} matched no rule.")
    for staff_id, n in sorted(result.by_owner.items(), key=lambda kv: (-kv[1], kv[0])):
        console.print(f"  {db_session.get(StaffUser, staff_id).email}: {n}")


@app.command("mine")
@handle_errors
def mine_command(
    user: UserOption,
    all_: Annotated[bool, typer.Option("--all", help="Include done and cancelled.")] = False,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """Your open tasks, soonest due first, then by priority."""
    from keepwell.tasks import service

    with unit_of_work(load_settings()) as db_session:
        me = _staff_id(db_session, user)
        tasks = service.my_tasks(
            db_session=db_session, owner_id=me, include_closed=all_, limit=limit
        )
        console.print(_table(db_session, tasks, f"Tasks of {user} ({len(tasks)})"))
    if not tasks:
        console.print("[dim]Nothing to do.[/]")


@rules_app.command("list")
@handle_errors
def rules_list() -> None:
    """Assignment rules in the order they are tried."""
    from keepwell.tasks import assignment
    from keepwell.users.models import StaffUser

    with unit_of_work(load_settings()) as db_session:
        rules = assignment.list_rules(db_session=db_session)
        table = Table(title="Assignment rules", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("id", "for", "order", "name", "audience", "strategy", "assignees"):
            table.add_column(col, overflow="fold")
        for r in rules:
            people = [db_session.get(StaffUser, i) for i in r.assignee_ids]
            audience = (
                f"segment {r.segment_name}" if r.segment_name else (r.segment_filter or "everyone")
            )
            table.add_row(
                str(r.id),
                r.target.value,
                str(r.position),
                r.name,
                audience,
                r.strategy.value,
                ", ".join(p.email for p in people if p is not None),
            )
        console.print(table)


@rules_app.command("add")
@handle_errors
def rules_add(
    name: Annotated[str, typer.Argument(help="Rule name.")],
    to: Annotated[
        list[str] | None, typer.Option("--to", help="Assignee e-mail (repeat for round-robin).")
    ] = None,
    customer_owner: Annotated[
        bool, typer.Option("--customer-owner", help="Give tasks to the customer's owner.")
    ] = False,
    target: Annotated[RuleTarget, typer.Option("--for", help="tasks or customers.")] = (
        RuleTarget.tasks
    ),
    where: Annotated[
        str | None, typer.Option("--where", help='Segment filter, e.g. industry = "travel".')
    ] = None,
    segment: Annotated[str | None, typer.Option(help="A saved segment's name.")] = None,
    position: Annotated[int | None, typer.Option(help="Order (lower is tried first).")] = None,
) -> None:
    """Add an assignment rule (round-robin among --to, or --customer-owner)."""
    from keepwell.tasks import assignment

    with unit_of_work(load_settings()) as db_session:
        rule = assignment.create_rule(
            db_session=db_session,
            name=name,
            assignee_ids=[_staff_id(db_session, e) for e in (to or [])],
            strategy=RuleStrategy.customer_owner if customer_owner else RuleStrategy.round_robin,
            target=target,
            segment_filter=where,
            segment_name=segment,
            position=position,
        )
        console.print(f"Added rule {rule.id} ({rule.target.value}, position {rule.position}).")


@rules_app.command("remove")
@handle_errors
def rules_remove(rule_id: Annotated[int, typer.Argument(help="Rule id.")]) -> None:
    """Remove an assignment rule."""
    from keepwell.tasks import assignment

    with unit_of_work(load_settings()) as db_session:
        assignment.delete_rule(db_session=db_session, rule_id=rule_id)
    console.print(f"Removed rule {rule_id}.")
