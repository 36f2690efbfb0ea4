"""One engine per database URL and process, and schema migrations (Alembic, shipped in the package).

SQLite (the embedded default) runs in WAL mode with a busy timeout so that several gunicorn workers
can write to one file; PostgreSQL is for deployments with several instances.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("cds_service.store")

SCRIPT_LOCATION = "cds_service.store:migrations"
_MIGRATION_LOCK_ID = 4_807_211  # pg_advisory_lock key: one migrating instance at a time
_SCHEMA_RETRY_SECONDS = 5.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, synchronous: str = "FULL") -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for an in-memory database, a `file:` URI (its options
    are SQLite's business) and other backends."""
    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or name in ("", ":memory:") or name.startswith("file:"):
        return None
    return Path(name)


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine that fails fast when the database is away (callers answer 503, never hang).
    SQLite: `durable` commits are synced to disk (FULL); otherwise they survive a crash of the
    process but not of the machine (NORMAL: no sync per commit in WAL mode)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = (parsed.database or "") in ("", ":memory:")
        path = sqlite_file(url)
        if path is not None:
            path.expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_pre_ping=True) if in_memory else create_engine(url, pool_timeout=5)
        synchronous = "FULL" if durable else "NORMAL"
        event.listen(engine, "connect", lambda conn, record: _sqlite_pragmas(conn, record, synchronous))
        return engine
    connect_args = {"connect_timeout": 3} if parsed.get_backend_name() == "postgresql" else {}
    return create_engine(url, pool_pre_ping=True, pool_timeout=5, connect_args=connect_args)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class Database:
    """The engine of one URL in this process, with the schema brought to the newest migration."""

    def __init__(self, url: str, *, durable: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url, durable=durable)
        self._schema_ready = False
        self._last_attempt = float("-inf")
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._lock_file: tuple[int, int | None] = (0, None)
        # Connections must not cross a fork (gunicorn preloads the app in the master).
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self.engine.dispose(close=False)
        self._write_lock = threading.Lock()  # a lock held by another thread at fork time stays held

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What a failing database raises: SQLAlchemy's errors, and the driver's own where a store
        writes on a driver connection (store/sql.py)."""
        driver = getattr(self.engine.dialect.dbapi, "Error", None)
        own = (driver,) if isinstance(driver, type) and issubclass(driver, Exception) else ()
        return (SQLAlchemyError, *own)

    @contextlib.contextmanager
    def write_turn(self) -> Iterator[None]:
        """SQLite has one write lock per file, and a writer that finds it taken sleeps in SQLite's
        busy handler (1, 2, 5, 10 ... 100 ms a time) whoever releases it. Writers on the hot path
        take turns here instead: a thread lock in this process, an flock on `<file>.lock` across
        processes; both wake the next writer the moment the lock is released. Other backends:
        nothing to do (PostgreSQL locks rows, not the database)."""
        if self.backend != "sqlite":
            yield
            return
        with self._write_lock:
            fd = self._lock_fd()
            if fd is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_fd(self) -> int | None:
        """This process's lock file descriptor (opened after any fork: flock belongs to the open
        file, which a fork would share); None when the URL names no file (sqlite_file)."""
        if self._lock_file[0] == os.getpid():
            return self._lock_file[1]
        path = sqlite_file(self.url)
        if path is None:
            return None
        fd = os.open(f"{path.expanduser()}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._lock_file = (os.getpid(), fd)
        return fd

    def upgrade(self) -> None:
        """Run pending migrations (idempotent). PostgreSQL instances take turns via an advisory lock;
        processes sharing a SQLite file via its write turn: a migration's read-then-write transaction
        that loses SQLite's race fails at once (no busy wait for a snapshot that went stale)."""
        with self.write_turn(), self.engine.begin() as connection:
            if self.backend == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            if MigrationContext.configure(connection).get_current_revision() == head_revision():
                return
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        log.info("database migrated", extra={"backend": self.backend, "revision": head_revision()})

    def ensure_schema(self) -> bool:
        """True once migrations ran; a database that was away is retried at most every few seconds."""
        if self._schema_ready:
            return True
        with self._lock:
            if self._schema_ready:
                return True
            if time.monotonic() - self._last_attempt < _SCHEMA_RETRY_SECONDS:
                return False
            self._last_attempt = time.monotonic()
            try:
                self.upgrade()
            except SQLAlchemyError as error:
                log.error(
                    "database unavailable: schema not checked",
                    extra={"backend": self.backend, "error": type(error).__name__},
                )
                return False
            self._schema_ready = True
            return True

    def ping(self) -> bool:
        """Reachable, with the schema in place: what /readyz asks before traffic is sent here."""
        if not self.ensure_schema():
            return False
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def database_for(url: str, *, durable: bool = True) -> Database:
    """One Database (engine and pool) per URL in this process, shared by every app built here."""
    with _databases_lock:
        found = _databases.get(url)
        if found is None:
            found = _databases[url] = Database(url, durable=durable)
        return found


def replay_database_for(database: Database) -> Database:
    """Where seen JWT ids go. PostgreSQL: the same database. SQLite: a file of its own next to the
    main one (`cds.sqlite` -> `cds.replay.sqlite`), so the write on every authenticated call never
    waits behind card recording or feedback for SQLite's one write lock (measured: p99 over 1 s at
    8 connections when shared), without a disk sync per commit: after a power cut (not a process
    crash) ids of tokens still alive could be forgotten, for at most a token's lifetime."""
    path = sqlite_file(database.url)
    if path is None:
        return database
    replay = path.with_name(f"{path.stem}.replay{path.suffix or '.sqlite'}")
    url = make_url(database.url).set(database=str(replay)).render_as_string(hide_password=False)
    return database_for(url, durable=False)
