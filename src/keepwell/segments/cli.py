"""`keepwell segments ...` and `keepwell tags ...`: thin commands over the two services."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from sqlalchemy import select

from keepwell.cli_support import console, handle_errors, load_settings, unit_of_work
from keepwell.customers.models import Customer
from keepwell.errors import InvalidInput

app = typer.Typer(
    help="Segments: save customer filters, count and list members, track who enters and leaves.",
    no_args_is_help=True,
)
stats_app = typer.Typer(help="The per-customer usage table filters read.", no_args_is_help=True)
app.add_typer(stats_app, name="stats")
tags_app = typer.Typer(
    help="Tags: list them, tag customers one by one or in bulk.", no_args_is_help=True
)


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


@app.command("list")
@handle_errors
def list_segments() -> None:
    """List segments with their members at the last refresh."""
    from keepwell.segments import service

    with unit_of_work(load_settings()) as db_session:
        segments = service.list_segments(db_session=db_session)
        table = _table(f"Segments ({len(segments)})")
        for col in ("name", "kind", "members", "refreshed", "filter"):
            table.add_column(col, justify="right" if col == "members" else "left")
        for seg in segments:
            table.add_row(
                seg.name,
                seg.kind.value,
                f"{seg.member_count:,}",
                _when(seg.refreshed_at),
                seg.filter_text or "(hand-picked)",
            )
    console.print(table)
    if not segments:
        console.print("[dim]No segments yet: `keepwell segments install-defaults` adds some.[/]")


@app.command("create")
@handle_errors
def create(
    name: Annotated[str, typer.Argument(help="Segment name (unique).")],
    filter_text: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="Filter, e.g. 'mrr >= 100 and tag = \"vip\"'."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the segment is for.")] = None,
    static: Annotated[
        bool, typer.Option("--static", help="A hand-picked list instead of a filter.")
    ] = False,
    customers: Annotated[
        str | None, typer.Option(help="Static only: comma-separated external ids to add.")
    ] = None,
) -> None:
    """Save a segment (the filter is checked first) and refresh its membership."""
    from keepwell.customers import tags
    from keepwell.segments import service

    with unit_of_work(load_settings()) as db_session:
        seg = service.create_segment(
            db_session=db_session,
            name=name,
            filter_text=filter_text,
            description=description,
            kind="static" if static else "dynamic",
        )
        if customers:
            if not static:
                raise InvalidInput("--customers is for static segments", field="--customers")
            ids = tags.ids_for_external_ids(
                db_session=db_session, external_ids=customers.split(",")
            )
            service.add_members(db_session=db_session, segment=seg, customer_ids=ids)
        result = service.refresh(db_session=db_session, segment=seg)
    console.print(f"Created segment [bold]{seg.name}[/] with {result.members:,} members.")


@app.command("add")
@handle_errors
def add_members(
    name: Annotated[str, typer.Argument(help="Static segment name or #id.")],
    customers: Annotated[str, typer.Option(help="Comma-separated external ids.")],
) -> None:
    """Add customers to a static (hand-picked) segment."""
    from keepwell.customers import tags
    from keepwell.segments import service

    with unit_of_work(load_settings()) as db_session:
        seg = service.get_segment(db_session=db_session, name_or_id=name)
        ids = tags.ids_for_external_ids(db_session=db_session, external_ids=customers.split(","))
        n = service.add_members(db_session=db_session, segment=seg, customer_ids=ids)
    console.print(f"Added {n:,} customer(s) to {seg.name}.")


@app.command("remove")
@handle_errors
def remove_members(
    name: Annotated[str, typer.Argument(help="Static segment name or #id.")],
    customers: Annotated[str, typer.Option(help="Comma-separated external ids.")],
) -> None:
    """Remove customers from a static (hand-picked) segment."""
    from keepwell.customers import tags
    from keepwell.segments import service

    with unit_of_work(load_settings()) as db_session:
        seg = service.get_segment(db_session=db_session, name_or_id=name)
        ids = tags.ids_for_external_ids(db_session=db_session, external_ids=customers.split(","))
        n = service.remove_members(db_session=db_session, segment=seg, customer_ids=ids)
    console.print(f"Removed {n:,} customer(s) from {seg.name}.")


@app.command("show")
@handle_errors
def show(name: Annotated[str, typer.Argument(help="Segment name or #id.")]) -> None:
    """Show a segment: filter, members now and at the last refresh, recent entries and exits."""
    from keepwell.segments import service

    with unit_of_work(load_settings()) as db_session:
        seg = service.get_segment(db_session=db_session, name_or_id=name)
        now = service.count(db_session=db_session, segment=seg)
        changes = service.changes(db_session=db_session, segment=seg, limit=10)
        ids = [ch.customer_id for ch in changes]
        names = dict(
            db_session.execute(
                select(Customer.id, Customer.external_id).where(Customer.id.in_(ids))
            ).all()
        )
        console.rule(f"[bold]{seg.name}[/] [dim]#{seg.id} {seg.kind.value}[/]")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        grid.add_row("filter", seg.filter_text or "(hand-picked)")
        grid.add_row("description", seg.description or "-")
        grid.add_row("members now", f"{now:,}")
        grid.add_row("last refresh", f"{_when(seg.refreshed_at)} ({seg.member_count:,} members)")
        console.print(grid)
        if changes:
            table = _table("Recent changes")
            for col in ("when", "customer", "change"):
                table.add_column(col)
            for ch in changes:
                table.add_row(_when(ch.at), names.get(ch.customer_id, "?"), ch.change)
            console.print(table)


@app.command("count")
@handle_errors
def count(
    name: Annotated[str | None, typer.Argument(help="Segment name or #id.")] = None,
    filter_text: Annotated[
        str | None, typer.Option("--filter", "-f", help="Count a filter without saving it.")
    ] = None,
) -> None:
    """Count who is in a segment (or matches a filter) right now."""
    from keepwell.segments import service

    if (name is None) == (filter_text is None):
        raise InvalidInput("give a segment name or --filter (one of them)")
    with unit_of_work(load_settings()) as db_session:
        if filter_text is not None:
            n = service.count_filter(db_session=db_session, filter_text=filter_text)
        else:
            seg = service.get_segment(db_session=db_session, name_or_id=name)
            n = service.count(db_session=db_session, segment=seg)
    console.print(f"{n:,}")


@app.command("members")
@handle_errors
def members(
    name: Annotated[str, typer.Argument(help="Segment name or #id.")],
    limit: Annotated[int, typer.Option(help="How many to show.")] = 25,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
) -> None:
    """List a segment's members now, by name."""
    from keepwell.segments import service

    with unit_of_work(load_settings()) as db_session:
        seg = service.get_segment(db_session=db_session, name_or_id=name)
        page = service.members(db_session=db_session, segment=seg, limit=limit, offset=offset)
        table = _table(f"{seg.name} ({page.total:,} members)")
        for col in ("id", "name", "industry", "status"):
            table.add_column(col, no_wrap=True)
        for c in page.rows:
            table.add_row(c.external_id, c.name, c.industry or "", c.status.value)
    console.print(table)
    shown_to = page.offset + len(page.rows)
    if page.total > shown_to:
        console.print(f"[dim]Showing {page.offset + 1}-{shown_to}; next: --offset {shown_to}[/]")


@app.command("refresh")
@handle_errors
def refresh(
    name: Annotated[str | None, typer.Argument(help="Segment name or #id (default: all).")] = None,
) -> None:
    """Refresh stored memberships and log who entered and who left."""
    from keepwell.segments import service

    with unit_of_work(load_settings()) as db_session:
        if name is None:
            results = service.refresh_all(db_session=db_session)
        else:
            seg = service.get_segment(db_session=db_session, name_or_id=name)
            results = {seg.name: service.refresh(db_session=db_session, segment=seg)}
    table = _table(f"Refreshed {len(results)} segment(s)")
    for col in ("segment", "entered", "left", "members"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for seg_name, r in results.items():
        table.add_row(seg_name, f"{r.entered:,}", f"{r.left:,}", f"{r.members:,}")
    console.print(table)


@app.command("delete")
@handle_errors
def delete(
    name: Annotated[str, typer.Argument(help="Segment name or #id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a segment with its membership history."""
    from keepwell.segments import service

    with unit_of_work(load_settings()) as db_session:
        seg = service.get_segment(db_session=db_session, name_or_id=name)
        if not yes and not typer.confirm(f"Delete segment {seg.name!r} and its history?"):
            raise typer.Abort()
        seg_name = seg.name
        service.delete_segment(db_session=db_session, segment=seg)
    console.print(f"Deleted segment [bold]{seg_name}[/].")


@app.command("install-defaults")
@handle_errors
def install_defaults() -> None:
    """Add the ready-made segments (at risk, crisis-hit, forgotten zone ...); safe to re-run."""
    from keepwell.segments.defaults import DEFAULTS
    from keepwell.segments.defaults import install_defaults as install

    with unit_of_work(load_settings()) as db_session:
        created = install(db_session=db_session)
    for seg in DEFAULTS:
        mark = "[green]added[/]" if seg.name in created else "[dim]already there[/]"
        console.print(f"  {seg.name:<24} {mark}")
    console.print("Run `keepwell segments refresh` to fill them.")


@app.command("fields")
def fields() -> None:
    """Print the field catalogue of the filter language."""
    from keepwell.segments.fields import catalogue

    table = _table("Filter fields")
    for col in ("field", "type", "meaning"):
        table.add_column(col, overflow="fold")
    for f in catalogue():
        values = f" Values: {', '.join(repr(v) for v in f.values)}." if f.values else ""
        table.add_row(f.name, f.type, f.description + values)
    table.add_row("attributes.<key>", "any", "Custom attribute; typed by the value compared.")
    console.print(table)
    console.print(
        '[dim]Operators: = != < <= > >= in [..] not in [..] contains "x" starts with "x" '
        "is null, is not null; combine with and / or / not and parentheses.[/]"
    )


@stats_app.command("refresh")
@handle_errors
def stats_refresh(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Day (YYYY-MM-DD); default today.")
    ] = None,
) -> None:
    """Recompute usage band, active days, events and days since the last event per customer."""
    from keepwell.segments.stats import refresh_stats

    day = None
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            raise InvalidInput(
                f"{as_of!r} is not a date", field="--as-of", expected="YYYY-MM-DD"
            ) from None
    settings = load_settings()
    with unit_of_work(settings) as db_session:
        result = refresh_stats(db_session=db_session, settings=settings, as_of=day)
    console.print(
        f"Customer stats as of {result.as_of}: {result.customers:,} customers with events"
    )
    for band, n in result.bands.items():
        console.print(f"  {band:<18} {n:,}")


def _targets(db_session, customers: str | None, file: Path | None, segment: str | None):
    from keepwell.customers import tags
    from keepwell.segments import service

    given = [x is not None for x in (customers, file, segment)]
    if sum(given) != 1:
        raise InvalidInput("give exactly one of --customers, --file or --segment")
    if segment is not None:
        seg = service.get_segment(db_session=db_session, name_or_id=segment)
        return service.member_ids(db_session=db_session, segment=seg)
    if file is not None:
        lines = file.read_text(encoding="utf-8").splitlines()
        return tags.ids_for_external_ids(db_session=db_session, external_ids=lines)
    return tags.ids_for_external_ids(db_session=db_session, external_ids=customers.split(","))


CustomersOpt = Annotated[
    str | None, typer.Option("--customers", help="Comma-separated external ids.")
]
FileOpt = Annotated[Path | None, typer.Option("--file", help="File with one external id a line.")]
SegmentOpt = Annotated[str | None, typer.Option("--segment", help="Everyone in this segment.")]


@tags_app.command("list")
@handle_errors
def tags_list() -> None:
    """List tags with how many customers carry each."""
    from keepwell.customers import tags

    with unit_of_work(load_settings()) as db_session:
        rows = tags.list_tags(db_session=db_session)
        table = _table(f"Tags ({len(rows)})")
        table.add_column("tag")
        table.add_column("customers", justify="right")
        for row in rows:
            table.add_row(row.tag.name, f"{row.customers:,}")
    console.print(table)


@tags_app.command("add")
@handle_errors
def tags_add(
    customer: Annotated[str, typer.Argument(help="External id (or #internal-id).")],
    tag: Annotated[str, typer.Argument(help="Tag name (created when new).")],
) -> None:
    """Tag one customer."""
    from keepwell.customers import service as customers
    from keepwell.customers import tags

    with unit_of_work(load_settings()) as db_session:
        c = customers.get_or_raise(db_session=db_session, ref=customer)
        added = tags.add_tag(db_session=db_session, customer_id=c.id, tag_name=tag)
    console.print(f"Tagged {customer} {tag!r}." if added else f"{customer} already has {tag!r}.")


@tags_app.command("remove")
@handle_errors
def tags_remove(
    customer: Annotated[str, typer.Argument(help="External id (or #internal-id).")],
    tag: Annotated[str, typer.Argument(help="Tag name.")],
) -> None:
    """Untag one customer."""
    from keepwell.customers import service as customers
    from keepwell.customers import tags

    with unit_of_work(load_settings()) as db_session:
        c = customers.get_or_raise(db_session=db_session, ref=customer)
        removed = tags.remove_tag(db_session=db_session, customer_id=c.id, tag_name=tag)
    console.print(
        f"Untagged {customer} {tag!r}." if removed else f"{customer} did not have {tag!r}."
    )


@tags_app.command("bulk-add")
@handle_errors
def tags_bulk_add(
    tag: Annotated[str, typer.Argument(help="Tag name (created when new).")],
    customers: CustomersOpt = None,
    file: FileOpt = None,
    segment: SegmentOpt = None,
) -> None:
    """Tag many customers: listed, from a file, or a whole segment."""
    from keepwell.customers import tags

    with unit_of_work(load_settings()) as db_session:
        ids = _targets(db_session, customers, file, segment)
        n = tags.bulk_add(db_session=db_session, customer_ids=ids, tag_name=tag)
    console.print(f"Tagged {n:,} customer(s) {tag!r}.")


@tags_app.command("bulk-remove")
@handle_errors
def tags_bulk_remove(
    tag: Annotated[str, typer.Argument(help="Tag name.")],
    customers: CustomersOpt = None,
    file: FileOpt = None,
    segment: SegmentOpt = None,
) -> None:
    """Untag many customers: listed, from a file, or a whole segment."""
    from keepwell.customers import tags

    with unit_of_work(load_settings()) as db_session:
        ids = _targets(db_session, customers, file, segment)
        n = tags.bulk_remove(db_session=db_session, customer_ids=ids, tag_name=tag)
    console.print(f"Untagged {n:,} customer(s) {tag!r}.")


@tags_app.command("rename")
@handle_errors
def tags_rename(
    old: Annotated[str, typer.Argument(help="Current name.")],
    new: Annotated[str, typer.Argument(help="New name.")],
) -> None:
    """Rename a tag (customers keep it)."""
    from keepwell.customers import tags

    with unit_of_work(load_settings()) as db_session:
        tags.rename_tag(db_session=db_session, name=old, new_name=new)
    console.print(f"Renamed tag {old!r} to {new!r}.")


@tags_app.command("delete")
@handle_errors
def tags_delete(
    tag: Annotated[str, typer.Argument(help="Tag name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a tag; it is removed from every customer."""
    from keepwell.customers import tags

    if not yes and not typer.confirm(f"Delete tag {tag!r} from every customer?"):
        raise typer.Abort()
    with unit_of_work(load_settings()) as db_session:
        n = tags.delete_tag(db_session=db_session, name=tag)
    console.print(f"Deleted tag {tag!r} ({n:,} customer(s) had it).")
