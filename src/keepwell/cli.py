"""The ``keepwell`` command: composes one Typer sub-app per domain. No business logic here."""

from __future__ import annotations

import typer

from keepwell import __version__
from keepwell.automation.cli import automation_app, rules_app
from keepwell.campaigns.cli import campaigns_app, templates_app
from keepwell.cli_support import console, handle_errors, load_settings, open_engine
from keepwell.clv.cli import app as clv_app
from keepwell.customers.cli import app as customers_app
from keepwell.deals.cli import app as deals_app
from keepwell.demo.cli import app as demo_app
from keepwell.email.cli import app as email_app
from keepwell.events.cli import app as events_app
from keepwell.health.cli import app as health_app
from keepwell.imports.cli import app as import_app
from keepwell.journeys.cli import app as journeys_app
from keepwell.lookalikes.cli import app as lookalikes_app
from keepwell.reports.cli import app as report_app
from keepwell.risk.cli import app as risk_app
from keepwell.segments.cli import app as segments_app
from keepwell.segments.cli import tags_app
from keepwell.survival.cli import app as survival_app
from keepwell.tasks.cli import app as tasks_app
from keepwell.tasks.notes_cli import app as notes_app
from keepwell.users.cli import app as users_app
from keepwell.users.cli import tokens_app
from keepwell.web.cli import serve

app = typer.Typer(
    name="keepwell",
    help="keepwell: keep the customers you already have. Start with `keepwell demo`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The operational database: migrations and status.", no_args_is_help=True)

app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(demo_app, name="demo")
app.add_typer(customers_app, name="customers")
app.add_typer(events_app, name="events")
app.add_typer(report_app, name="report")
app.add_typer(risk_app, name="risk")
app.add_typer(health_app, name="health")
app.add_typer(survival_app, name="survival")
app.add_typer(clv_app, name="clv")
app.add_typer(lookalikes_app, name="lookalikes")
app.add_typer(segments_app, name="segments")
app.add_typer(tags_app, name="tags")
app.add_typer(tasks_app, name="tasks")
app.add_typer(deals_app, name="deals")
app.add_typer(notes_app, name="notes")
app.add_typer(email_app, name="email")
app.add_typer(templates_app, name="templates")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(automation_app, name="automation")
app.add_typer(rules_app, name="rules")
app.add_typer(journeys_app, name="journeys")
app.command("serve")(serve)


@app.command()
def version() -> None:
    """Print keepwell's version."""
    console.print(f"keepwell {__version__}")


@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    from keepwell import migrate

    settings = load_settings()
    engine = open_engine(settings, require=False)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    url = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"Database {url} is up to date (revision {after}).")
    else:
        console.print(f"Database {url} migrated from {before or 'empty'} to {after}.")


@db_app.command("current")
@handle_errors
def db_current() -> None:
    """Show the database's schema revision and the newest one available."""
    from keepwell import migrate

    settings = load_settings()
    engine = open_engine(settings, require=False)
    try:
        current = migrate.current_revision(engine)
    finally:
        engine.dispose()
    console.print(f"current: {current or 'none (run `keepwell db upgrade`)'}")
    console.print(f"newest:  {migrate.head_revision()}")


def main() -> None:
    """Console-script entry point."""
    app()
