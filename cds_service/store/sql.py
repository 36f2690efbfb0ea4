"""SQL shared by the stores: inserts that skip rows whose unique key already exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_new_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert `rows`, silently skipping those that collide on a unique key; returns rows inserted."""
    if not rows:
        return 0
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database: {dialect}")
    # RETURNING counts the rows really inserted (executemany rowcount is not reliable on psycopg).
    key = next(iter(table.primary_key.columns))
    return len(connection.execute(statement.returning(key), list(rows)).all())
