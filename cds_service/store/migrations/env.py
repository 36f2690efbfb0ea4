"""Alembic environment: runs on the connection `Database.upgrade` passes in (or the configured URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cds_service.store.database import make_engine
from cds_service.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    with make_engine(context.config.get_main_option("sqlalchemy.url") or "").begin() as connection:
        _run(connection)
