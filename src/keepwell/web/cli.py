"""`keepwell serve`: run the web server (REST API, staff pages, public pages)."""

from __future__ import annotations

from typing import Annotated

import typer

from keepwell.cli_support import console, handle_errors, load_settings, open_engine
from keepwell.errors import StoreError


def prepare_database(engine) -> str:
    """Migrate an empty database; refuse one that is behind (say how to upgrade).

    Returns what was done, in words.
    """
    from keepwell import migrate

    current = migrate.current_revision(engine)
    head = migrate.head_revision()
    if current is None:
        migrate.upgrade(engine)
        return f"created the database schema ({migrate.current_revision(engine)})"
    if current != head:
        raise StoreError(
            f"the database schema is at {current}, keepwell needs {head}",
            hint="run `keepwell db upgrade` first",
        )
    return f"database schema up to date ({current})"


@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
) -> None:
    """Run the web server: REST API at /v1 (docs at /docs), staff pages, public pages."""
    import uvicorn

    from keepwell.db import session_scope
    from keepwell.users import service as users_service

    settings = load_settings()
    engine = open_engine(settings, require=False)
    try:
        console.print(prepare_database(engine))
        with session_scope(engine) as db_session:
            if not users_service.get_all(db_session=db_session):
                console.print(
                    "[yellow]No staff users yet:[/] create an admin with "
                    "`keepwell users create --email you@example.com --name You --role admin`"
                )
    finally:
        engine.dispose()
    console.print(f"keepwell on http://{host}:{port}  (API docs: /docs)")
    uvicorn.run(
        "keepwell.web.server:app",
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="info",
    )
