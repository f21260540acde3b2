"""`keepwell templates ...` and `keepwell campaigns ...`: e-mail templates and campaigns."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from keepwell.cli_support import console, handle_errors, load_settings, progress, unit_of_work
from keepwell.errors import InvalidInput

templates_app = typer.Typer(
    help="E-mail templates with merge fields: list, create, show, preview, delete.",
    no_args_is_help=True,
)
campaigns_app = typer.Typer(
    help="E-mail campaigns: A/B variants, holdout, local-time sending, results.",
    no_args_is_help=True,
)


def _service():
    from keepwell.campaigns import service

    return service


def _read(path: Path | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text", field=option) from None


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


# --- templates ---------------------------------------------------------------------------------


@templates_app.command("list")
@handle_errors
def list_templates() -> None:
    """List templates."""
    with unit_of_work(load_settings()) as db_session:
        rows = _service().list_templates(db_session=db_session)
        table = _table(f"E-mail templates ({len(rows)})")
        for column in ("name", "subject", "version", "text", "updated"):
            table.add_column(column)
        for t in rows:
            table.add_row(
                t.name,
                t.subject,
                str(t.version),
                "own" if t.text else "from HTML",
                f"{t.updated_at:%Y-%m-%d %H:%M}",
            )
    console.print(table)


@templates_app.command("fields")
def fields() -> None:
    """The merge fields a template may use."""
    from keepwell.campaigns.fields import catalogue

    table = _table("Merge fields")
    table.add_column("field")
    table.add_column("meaning")
    for name, meaning in catalogue().items():
        table.add_row("{{ " + name + " }}", meaning)
    console.print(table)
    console.print('Fallback for a missing value: {{ customer.first_name | default("there") }}')


@templates_app.command("create")
@handle_errors
def create_template(
    name: Annotated[str, typer.Argument(help="Unique template name.")],
    subject: Annotated[str, typer.Option("--subject", help="Subject line (may use fields).")],
    html: Annotated[Path, typer.Option("--html", help="HTML body file.")],
    text: Annotated[
        Path | None, typer.Option("--text", help="Plain-text body file (default: from HTML).")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Update the template if it exists.")
    ] = False,
) -> None:
    """Create (or with --replace update) a template; rejects unknown fields and syntax errors."""
    html_text, text_text = _read(html, "--html"), _read(text, "--text")
    from keepwell.errors import NotFound

    service = _service()
    with unit_of_work(load_settings()) as db_session:
        existing = None
        if replace:
            try:
                existing = service.get_template(db_session=db_session, name_or_id=name)
            except NotFound:
                existing = None
        if existing is not None:
            row = service.update_template(
                db_session=db_session,
                template=existing,
                subject=subject,
                html=html_text,
                text=text_text or "",
            )
        else:
            row = service.create_template(
                db_session=db_session, name=name, subject=subject, html=html_text, text=text_text
            )
        console.print(f"Saved template [bold]{row.name}[/] (version {row.version}).")


@templates_app.command("show")
@handle_errors
def show_template(name: Annotated[str, typer.Argument(help="Template name or #id.")]) -> None:
    """Show a template's subject, HTML and plain text."""
    from keepwell.campaigns.templates import compiled

    with unit_of_work(load_settings()) as db_session:
        t = _service().get_template(db_session=db_session, name_or_id=name)
        tpl = compiled(t)
        console.print(f"[bold]{t.name}[/] (version {t.version})")
        console.print(f"Subject: {t.subject}", markup=False)
        console.print(f"Fields: {', '.join(sorted(tpl.fields)) or '-'}", markup=False)
        console.print("--- HTML ---")
        console.print(t.html, markup=False, highlight=False)
        console.print("--- text" + (" (generated from the HTML)" if tpl.text_generated else ""))
        console.print(tpl.text_source, markup=False, highlight=False)


@templates_app.command("preview")
@handle_errors
def preview(
    name: Annotated[str, typer.Argument(help="Template name or #id.")],
    customer: Annotated[str, typer.Argument(help="Customer id or external id.")],
    html: Annotated[bool, typer.Option("--html", help="Print the HTML (default: text).")] = False,
) -> None:
    """Render a template for one customer, as it would be sent."""
    from keepwell.campaigns.templates import render_preview
    from keepwell.customers import service as customers

    with unit_of_work(load_settings()) as db_session:
        t = _service().get_template(db_session=db_session, name_or_id=name)
        who = customers.get_or_raise(db_session=db_session, ref=customer)
        shown = render_preview(db_session=db_session, template=t, customer_id=who.id)
    console.print(f"To: {shown.to or '(no address)'}", markup=False)
    console.print(f"Subject: {shown.subject}", markup=False)
    console.print("")
    console.print(shown.html if html else shown.text, markup=False, highlight=False)


@templates_app.command("delete")
@handle_errors
def delete_template(name: Annotated[str, typer.Argument(help="Template name or #id.")]) -> None:
    """Delete a template no campaign uses."""
    with unit_of_work(load_settings()) as db_session:
        service = _service()
        t = service.get_template(db_session=db_session, name_or_id=name)
        service.delete_template(db_session=db_session, template=t)
        console.print(f"Deleted template {t.name}.", markup=False)


# --- campaigns ---------------------------------------------------------------------------------


def _variants(variant: list[str] | None, template: str | None):
    service = _service()
    if template and variant:
        raise InvalidInput("use --template or --variant, not both", field="--variant")
    if template:
        return [service.VariantIn("A", template, 100)]
    if not variant:
        raise InvalidInput(
            "say which template to send", field="--template", expected="--template NAME"
        )
    out = []
    for spec in variant:
        name, _, rest = spec.partition("=")
        tpl, _, share = rest.rpartition(":")
        try:
            percent = float(share)
        except ValueError:
            percent = None
        if not name or not tpl or percent is None:
            raise InvalidInput(
                f"--variant {spec!r}",
                field="--variant",
                expected="NAME=TEMPLATE:PERCENT, e.g. A=news:50",
            )
        out.append(service.VariantIn(name.strip(), tpl.strip(), percent))
    return out


@campaigns_app.command("create")
@handle_errors
def create_campaign(
    name: Annotated[str, typer.Argument(help="Unique campaign name.")],
    segment: Annotated[str | None, typer.Option(help="Audience segment (name or #id).")] = None,
    filter_text: Annotated[
        str | None, typer.Option("--filter", help='Audience filter, e.g. industry = "travel".')
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", help="One template for everyone.")
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option("--variant", help="A/B variant NAME=TEMPLATE:PERCENT (repeatable)."),
    ] = None,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Percent of the audience held out (gets nothing).")
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Random seed of the split.")] = None,
    send_date: Annotated[
        str | None, typer.Option("--send-date", help="Day to send (YYYY-MM-DD).")
    ] = None,
    send_time: Annotated[
        str | None, typer.Option("--send-time", help="Local time in each customer's zone (HH:MM).")
    ] = None,
) -> None:
    """Create a draft campaign."""
    day = None
    if send_date is not None:
        try:
            day = date.fromisoformat(send_date)
        except ValueError:
            raise InvalidInput(
                f"{send_date!r} is not a date", field="--send-date", expected="YYYY-MM-DD"
            ) from None
    with unit_of_work(load_settings()) as db_session:
        c = _service().create_campaign(
            db_session=db_session,
            name=name,
            variants=_variants(variant, template),
            segment=segment,
            filter_text=filter_text,
            holdout_percent=holdout,
            seed=seed,
            send_date=day,
            send_time=send_time,
        )
        shares = ", ".join(f"{v.name} {v.percent:g}% ({v.template.name})" for v in c.variants)
        console.print(
            f"Created campaign [bold]{c.name}[/] (#{c.id}, draft): {shares}; "
            f"holdout {c.holdout_percent:g}%, seed {c.seed}."
        )


@campaigns_app.command("list")
@handle_errors
def list_campaigns() -> None:
    """List campaigns, newest first."""
    with unit_of_work(load_settings()) as db_session:
        rows = _service().list_campaigns(db_session=db_session)
        table = _table(f"Campaigns ({len(rows)})")
        for column in ("id", "name", "status", "audience", "variants", "holdout", "launched"):
            table.add_column(column)
        for c in rows:
            table.add_row(
                str(c.id),
                c.name,
                str(c.status),
                c.segment_name or c.filter_text or "",
                ", ".join(v.name for v in c.variants),
                f"{c.holdout_percent:g}%",
                f"{c.launched_at:%Y-%m-%d %H:%M}" if c.launched_at else "",
            )
    console.print(table)


@campaigns_app.command("show")
@handle_errors
def show_campaign(name: Annotated[str, typer.Argument(help="Campaign name or #id.")]) -> None:
    """Show a campaign's settings and status."""
    with unit_of_work(load_settings()) as db_session:
        service = _service()
        c = service.get_campaign(db_session=db_session, name_or_id=name)
        service.refresh_status(db_session=db_session, campaign=c)
        console.print(f"[bold]{c.name}[/] (#{c.id}): {c.status}")
        audience = f"segment {c.segment_name}" if c.segment_name else f"filter {c.filter_text}"
        console.print(f"Audience: {audience}", markup=False)
        for v in c.variants:
            console.print(f"Variant {v.name}: {v.percent:g}% template {v.template.name}")
        console.print(f"Holdout: {c.holdout_percent:g}%   seed: {c.seed}")
        when = f"{c.send_date} {c.send_time} local time" if c.send_date else "when launched"
        console.print(f"Send: {when}")
        if c.launched_at:
            console.print(f"Launched: {c.launched_at:%Y-%m-%d %H:%M} UTC")


@campaigns_app.command("launch")
@handle_errors
def launch(name: Annotated[str, typer.Argument(help="Campaign name or #id.")]) -> None:
    """Snapshot the audience and queue the messages (safe to run again)."""
    settings = load_settings()
    with unit_of_work(settings) as db_session, progress() as bar:
        service = _service()
        c = service.get_campaign(db_session=db_session, name_or_id=name)
        task = bar.add_task("Queueing messages", total=None)

        def step(report) -> None:
            db_session.commit()  # the sender can start; a crash keeps what was queued
            done = report.queued + report.not_queued + report.failed
            bar.update(task, total=report.to_queue, completed=done)

        r = service.launch(db_session=db_session, settings=settings, campaign=c, on_batch=step)
    verb = "Relaunched" if r.relaunch else "Launched"
    console.print(
        f"{verb} [bold]{c.name}[/]: audience {r.audience:,} (holdout {r.holdout:,}); "
        f"queued {r.queued:,} now; status {r.status}."
    )
    for variant, n in r.by_variant.items():
        console.print(f"  variant {variant}: {n:,}")
    for why, n in r.excluded.items():
        console.print(f"  left out ({why}): {n:,}")
    if r.not_queued:
        console.print(f"  refused by the outbox (suppressed or queued before): {r.not_queued:,}")
    if r.failed:
        console.print(f"  [red]could not render: {r.failed:,}[/]")
        for line in r.errors:
            console.print(f"    {line}", markup=False)
    if r.unknown_time_zones:
        console.print(
            f"  [yellow]warning:[/] {r.unknown_time_zones:,} recipient(s) have an unknown time "
            "zone and are scheduled in UTC"
        )
    if r.first_send_at:
        console.print(
            f"  sending from {r.first_send_at:%Y-%m-%d %H:%M} "
            f"to {r.last_send_at:%Y-%m-%d %H:%M} UTC"
        )
    console.print("Run `keepwell email send` (or the server) to deliver the queued messages.")


@campaigns_app.command("cancel")
@handle_errors
def cancel(name: Annotated[str, typer.Argument(help="Campaign name or #id.")]) -> None:
    """Cancel a campaign; queued messages are withdrawn."""
    with unit_of_work(load_settings()) as db_session:
        service = _service()
        c = service.get_campaign(db_session=db_session, name_or_id=name)
        withdrawn = service.cancel_campaign(db_session=db_session, campaign=c)
    console.print(f"Cancelled {c.name}: {withdrawn:,} queued message(s) withdrawn.", markup=False)


def _effect_line(label: str, e) -> str:
    if e is None:
        return f"{label}: no holdout group"
    head = (
        f"{label}: churn {_pct(e.recipients_rate)} of {e.recipients} recipients vs "
        f"{_pct(e.holdout_rate)} of {e.holdout} held out"
    )
    if not e.enough_data:
        return f"{head} -- {e.note}"
    return (
        f"{head}; difference {100 * e.difference:+.1f} pts "
        f"(95% CI {100 * e.ci_low:+.1f} to {100 * e.ci_high:+.1f}), p = {e.p_value:.3g}: {e.note}"
    )


@campaigns_app.command("results")
@handle_errors
def results(
    name: Annotated[str, typer.Argument(help="Campaign name or #id.")],
    days: Annotated[int, typer.Option("--days", help="Retention window after launch.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delivery, engagement per variant and the retention effect vs the holdout group."""
    from dataclasses import asdict

    with unit_of_work(load_settings()) as db_session:
        service = _service()
        c = service.get_campaign(db_session=db_session, name_or_id=name)
        res = service.results(db_session=db_session, campaign=c, retention_days=days)
    if as_json:
        payload = asdict(res)
        payload["launched_at"] = res.launched_at.isoformat() if res.launched_at else None
        for row, v in zip(
            [*payload["variants"], payload["total"]], [*res.variants, res.total], strict=True
        ):
            for rate in (
                "delivered_rate",
                "open_rate",
                "click_rate",
                "unsubscribe_rate",
                "bounce_rate",
            ):
                row[rate] = getattr(v, rate)
        console.print_json(json.dumps(payload))
        return
    console.print(
        f"[bold]{res.name}[/] ({res.status}): audience {res.audience:,}, holdout {res.holdout:,}"
    )
    table = _table("Delivery and engagement")
    cols = [
        "variant",
        "audience",
        "queued",
        "pending",
        "sent",
        "delivered",
        "opened",
        "clicked",
        "unsub",
        "bounced",
        "failed",
        "suppr.",
    ]
    for col in cols:
        table.add_column(col, justify="left" if col == "variant" else "right")
    for v in [*res.variants, res.total]:
        table.add_row(
            v.name,
            f"{v.audience:,}",
            f"{v.queued:,}",
            f"{v.pending:,}",
            f"{v.sent:,}",
            f"{v.delivered:,} {_pct(v.delivered_rate)}",
            f"{v.opened:,} {_pct(v.open_rate)}",
            f"{v.clicked:,} {_pct(v.click_rate)}",
            f"{v.unsubscribed:,}",
            f"{v.bounced:,} {_pct(v.bounce_rate)}",
            f"{v.failed:,}",
            f"{v.suppressed:,}",
        )
    console.print(table)
    console.print(_effect_line(f"Retention ({days} days)", res.retention), markup=False)
    for variant, effect in res.retention_by_variant.items():
        console.print(_effect_line(f"  variant {variant}", effect), markup=False)
