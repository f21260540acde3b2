"""`keepwell automation run` and `keepwell rules ...`: alert rules, playbooks, firings."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work
from keepwell.errors import InvalidInput

automation_app = typer.Typer(
    help="Run alert rules and journeys (cron-able, idempotent).", no_args_is_help=True
)
rules_app = typer.Typer(
    help="Alert rules and playbooks: list, create, show, enable, disable, delete, history.",
    no_args_is_help=True,
)


def _service():
    from keepwell.automation import service

    return service


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"not a date-time: {value!r}", field="--now", expected="ISO 8601 with a time zone"
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(
            "give a time zone", field="--now", expected="e.g. 2026-03-01T09:00:00+00:00"
        )
    return parsed


def _print_run(report) -> None:
    verb = "would fire" if report.dry_run else "fired"
    if report.firings:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        table.title = f"{len(report.firings)} alert(s) {verb}"
        for col in ("rule", "customer", "why", "status"):
            table.add_column(col, overflow="fold")
        for f in report.firings:
            status = f.status + ("".join(f"\n{e}" for e in f.errors) if f.errors else "")
            table.add_row(f.rule, f"{f.customer_name} (#{f.customer_id})", f.reason, status)
        console.print(table)
    else:
        console.print(f"No alert {verb}.")
    for f in report.retried:
        console.print(f"retried: {f.rule} for {f.customer_name}: {f.status}")
    skipped = (
        f"skipped: {report.skipped_duplicate} already fired, {report.skipped_cooldown} in "
        f"cooldown, {report.skipped_audience} outside the audience"
    )
    console.print(skipped)
    for name, message in report.rule_errors.items():
        console.print(f"[red]rule {name!r} not evaluated:[/] {message}")
    j = report.journeys
    if j is not None:
        console.print(
            f"journeys: {len(j.enrolled)} enrolled, {len(j.steps)} step(s) "
            f"{'would run' if report.dry_run else 'run'}, {len(j.exited)} exited, "
            f"{len(j.completed)} completed"
        )
        for s in j.steps:
            console.print(
                f"  {s.journey} / customer #{s.customer_id} / step {s.position} "
                f"{s.kind}: {s.status} {s.detail}"
            )


@automation_app.command("run")
@handle_errors
def run_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List who would be hit and why; write nothing.")
    ] = False,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Run only this rule (also when disabled).")
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Pretend it is this time (ISO 8601, with zone).")
    ] = None,
) -> None:
    """Evaluate the rules, run their actions, advance journeys. Safe to run from cron."""
    settings = load_settings()
    with unit_of_work(settings) as db_session:
        report = _service().run(
            db_session=db_session,
            settings=settings,
            now=_parse_now(now),
            dry_run=dry_run,
            rule=rule,
        )
        if dry_run:
            db_session.rollback()
    _print_run(report)


@automation_app.command("schedule")
@handle_errors
def schedule_command(
    interval: Annotated[int, typer.Option(help="Seconds between runs.", min=1)] = 300,
) -> None:
    """Run automation every INTERVAL seconds until interrupted (what the server does)."""
    from keepwell.automation.scheduler import run_scheduler

    console.print(f"Running automation every {interval} s (Ctrl+C stops).")
    try:
        run_scheduler(load_settings(), interval)
    except KeyboardInterrupt:
        console.print("stopped")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _definition_from_options(**opts) -> dict[str, Any]:
    if not opts["name"] or not opts["trigger"]:
        raise InvalidInput(
            "give a definition FILE, or --name and --trigger",
            field="name" if not opts["name"] else "trigger",
        )
    params: dict[str, Any] = {}
    for item in opts["param"]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"bad --param {item!r}", field="params", expected="KEY=VALUE")
        params[key.strip()] = _value(value.strip())
    actions: list[dict[str, Any]] = []
    actions += [{"type": "create_task", "title": t} for t in opts["task"]]
    actions += [{"type": "send_email", "template": t} for t in opts["email"]]
    actions += [{"type": "add_tag", "tag": t} for t in opts["tag"]]
    actions += [{"type": "enrol", "journey": j} for j in opts["journey"]]
    actions += [{"type": "webhook", "url": u} for u in opts["webhook"]]
    actions += [{"type": "playbook", "name": p} for p in opts["playbook"]]
    definition: dict[str, Any] = {
        "name": opts["name"],
        "trigger": opts["trigger"],
        "params": params,
        "actions": actions,
        "cooldown_days": opts["cooldown_days"],
        "enabled": not opts["disabled"],
    }
    if opts["audience"]:
        definition["audience"] = opts["audience"]
    return definition


@rules_app.command("create")
@handle_errors
def create_command(
    file: Annotated[
        Path | None, typer.Argument(help="A YAML or JSON rule definition (see docs).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Rule name (without FILE).")] = None,
    trigger: Annotated[str | None, typer.Option(help="Trigger kind, e.g. payment_failed.")] = None,
    param: Annotated[list[str], typer.Option(help="Trigger parameter KEY=VALUE.")] = [],  # noqa: B006
    task: Annotated[list[str], typer.Option(help="Action: create a task with this title.")] = [],  # noqa: B006
    email: Annotated[list[str], typer.Option(help="Action: send this template.")] = [],  # noqa: B006
    tag: Annotated[list[str], typer.Option(help="Action: add this tag.")] = [],  # noqa: B006
    journey: Annotated[list[str], typer.Option(help="Action: enrol in this journey.")] = [],  # noqa: B006
    webhook: Annotated[list[str], typer.Option(help="Action: POST to this URL.")] = [],  # noqa: B006
    playbook: Annotated[list[str], typer.Option(help="Action: run this playbook.")] = [],  # noqa: B006
    audience: Annotated[str | None, typer.Option(help="Segment filter text.")] = None,
    cooldown_days: Annotated[int, typer.Option(help="Days between firings per customer.")] = 0,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
) -> None:
    """Create a rule from FILE, or from options."""
    from keepwell.automation import definitions

    if file is not None:
        definition = definitions.load_file(file)
    else:
        definition = _definition_from_options(**locals())
    with unit_of_work(load_settings()) as db_session:
        rule = _service().create_rule(db_session=db_session, definition=definition)
        console.print(f"Created rule {rule.name!r} (#{rule.id}, trigger {rule.trigger}).")


@rules_app.command("list")
@handle_errors
def list_command() -> None:
    """List the rules."""
    with unit_of_work(load_settings()) as db_session:
        rules = _service().list_rules(db_session=db_session)
        counts = _service().firing_counts(db_session=db_session)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("id", "name", "trigger", "enabled", "cooldown", "firings"):
            table.add_column(col, overflow="fold")
        for r in rules:
            table.add_row(
                str(r.id),
                r.name,
                r.trigger,
                "yes" if r.enabled else "no",
                f"{r.cooldown_days} d",
                str(counts.get(r.id, 0)),
            )
    console.print(table if rules else "No rules yet: `keepwell rules create FILE`.")


@rules_app.command("show")
@handle_errors
def show_command(rule: Annotated[str, typer.Argument(help="Rule name or id.")]) -> None:
    """Show a rule's definition (webhook secrets masked)."""
    with unit_of_work(load_settings()) as db_session:
        r = _service().get_rule_or_raise(db_session=db_session, name_or_id=rule)
        data = _service().definition(r)
    console.print_json(json.dumps(data))


def _toggle(rule: str, enabled: bool) -> None:
    with unit_of_work(load_settings()) as db_session:
        r = _service().get_rule_or_raise(db_session=db_session, name_or_id=rule)
        _service().set_enabled(db_session=db_session, rule=r, enabled=enabled)
        console.print(f"Rule {r.name!r} {'enabled' if enabled else 'disabled'}.")


@rules_app.command("enable")
@handle_errors
def enable_command(rule: Annotated[str, typer.Argument(help="Rule name or id.")]) -> None:
    """Enable a rule."""
    _toggle(rule, True)


@rules_app.command("disable")
@handle_errors
def disable_command(rule: Annotated[str, typer.Argument(help="Rule name or id.")]) -> None:
    """Disable a rule (it keeps its history)."""
    _toggle(rule, False)


@rules_app.command("delete")
@handle_errors
def delete_command(
    rule: Annotated[str, typer.Argument(help="Rule name or id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a rule and its firing history."""
    with unit_of_work(load_settings()) as db_session:
        r = _service().get_rule_or_raise(db_session=db_session, name_or_id=rule)
        if not yes:
            typer.confirm(f"Delete rule {r.name!r} and its history?", abort=True)
        _service().delete_rule(db_session=db_session, rule=r)
        console.print(f"Deleted rule {r.name!r}.")


@rules_app.command("history")
@handle_errors
def history_command(
    rule: Annotated[str, typer.Argument(help="Rule name or id.")],
    limit: Annotated[int, typer.Option(help="How many firings.", min=1)] = 20,
) -> None:
    """The rule's latest firings and their actions' results."""
    with unit_of_work(load_settings()) as db_session:
        r = _service().get_rule_or_raise(db_session=db_session, name_or_id=rule)
        firings = _service().history(db_session=db_session, rule=r, limit=limit)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"Firings of {r.name!r}")
        for col in ("fired", "customer", "why", "status", "actions"):
            table.add_column(col, overflow="fold")
        for f in firings:
            actions = "; ".join(
                f"{item['action']['type']}: {item['status']}"
                + (f" ({item['error']})" if item.get("error") else "")
                for item in f.results
            )
            table.add_row(
                f"{f.fired_at:%Y-%m-%d %H:%M}",
                f"{f.customer.name} ({f.customer.external_id})",
                f.reason,
                f.status,
                actions,
            )
    console.print(table if firings else f"Rule {r.name!r} has not fired yet.")


@rules_app.command("playbooks")
@handle_errors
def playbooks_command() -> None:
    """List the playbooks."""
    with unit_of_work(load_settings()) as db_session:
        for p in _service().list_playbooks(db_session=db_session):
            steps = ", ".join(a["type"] for a in p.actions)
            console.print(f"{p.name}: {steps}")


@rules_app.command("playbook-create")
@handle_errors
def playbook_create_command(
    file: Annotated[Path, typer.Argument(help="YAML/JSON with name, description, actions.")],
) -> None:
    """Create a playbook (a named action list rules can use) from FILE."""
    from keepwell.automation import definitions

    data = definitions.load_file(file)
    if not isinstance(data, dict):
        raise InvalidInput("a playbook file must be a mapping", expected="name, actions")
    with unit_of_work(load_settings()) as db_session:
        p = _service().create_playbook(
            db_session=db_session,
            name=data.get("name", ""),
            actions=data.get("actions", []),
            description=data.get("description"),
        )
        console.print(f"Created playbook {p.name!r} with {len(p.actions)} action(s).")
