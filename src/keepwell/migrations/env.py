"""Alembic environment: runs keepwell's migrations on the connection or URL it is given."""

from __future__ import annotations

from alembic import context

from keepwell.all_models import metadata
from keepwell.db import make_engine

OWN_TABLES = set(metadata.tables)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Never let autogenerate touch tables keepwell does not own."""
    if type_ == "table":
        return name in OWN_TABLES
    return True


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
