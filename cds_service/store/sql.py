"""SQL shared by the stores: inserts that skip rows whose unique key already exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


@cache
def _insert_skipping_duplicates(table: Table, dialect: str) -> Any:
    """Built once per table and dialect (constructing it cost about as much as running it on every
    JWT); RETURNING counts the rows really inserted: rowcount is not reliable on psycopg."""
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database: {dialect}")
    return statement.returning(next(iter(table.primary_key.columns)))


def insert_new_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert `rows`, silently skipping those that collide on a unique key; returns rows inserted."""
    if not rows:
        return 0
    statement = _insert_skipping_duplicates(table, connection.dialect.name)
    return len(connection.execute(statement, list(rows)).all())


def insert_new_row(connection: Connection, table: Table, row: Mapping[str, Any]) -> bool:
    """Insert one row unless its unique key exists; True when inserted. The path of every
    authenticated call: one plain execute, not SQLAlchemy's executemany (insertmanyvalues) path."""
    statement = _insert_skipping_duplicates(table, connection.dialect.name)
    return connection.execute(statement, dict(row)).first() is not None
