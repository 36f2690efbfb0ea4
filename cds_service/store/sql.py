"""SQL shared by the stores: inserts that skip rows whose unique key already exists."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite


@cache
def _insert_skipping_duplicates(table: Table, dialect: str, returning: bool = True) -> Any:
    """Built once per table and dialect (constructing it cost about as much as running it on every
    JWT); RETURNING counts the rows really inserted: rowcount is not reliable on psycopg."""
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database: {dialect}")
    return statement.returning(next(iter(table.primary_key.columns))) if returning else statement


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


@cache
def _compiled_insert(
    table: Table, engine: Engine, returning: bool = True
) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    """The skipping insert as the driver's SQL, its parameter order (None: named parameters) and
    the column types' bind processors (how SQLAlchemy would store a datetime, for one)."""
    statement = _insert_skipping_duplicates(table, engine.dialect.name, returning)
    compiled = statement.compile(dialect=engine.dialect)
    processors = {
        column.name: column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
        for column in table.columns
    }
    order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    return str(compiled), order, {k: v for k, v in processors.items() if v is not None}


@contextmanager
def _driver_cursor(engine: Engine) -> Iterator[Any]:
    """A cursor of a pooled driver connection, in a transaction committed when the block ends
    (rolled back when it raises; driver errors are raised as the driver's)."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()


def _driver_parameters(
    row: Mapping[str, Any], order: tuple[str, ...] | None, processors: Mapping[str, Any]
) -> Any:
    values = {k: processors[k](v) if k in processors else v for k, v in row.items()}
    return tuple(values[name] for name in order) if order is not None else values


def insert_new_row_now(engine: Engine, table: Table, row: Mapping[str, Any]) -> bool:
    """`insert_new_row` in its own transaction, on a pooled driver connection: the same statement
    and stored values without SQLAlchemy's per-execute work (about half the cost of a JWT's replay
    check). Driver errors are raised as the driver's; the caller treats them as an outage."""
    sql, order, processors = _compiled_insert(table, engine)
    with _driver_cursor(engine) as cursor:
        cursor.execute(sql, _driver_parameters(row, order, processors))
        return cursor.fetchone() is not None


def insert_rows_now(engine: Engine, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """`insert_new_rows` in its own transaction on a pooled driver connection (one executemany,
    no count): the card writer's batches, at a fraction of SQLAlchemy's per-row cost. Rows carry
    every column of the table (the statement names them all)."""
    if not rows:
        return
    sql, order, processors = _compiled_insert(table, engine, returning=False)
    with _driver_cursor(engine) as cursor:
        cursor.executemany(sql, [_driver_parameters(row, order, processors) for row in rows])
