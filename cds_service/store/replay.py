"""Refusing a JWT id seen before, across gunicorn workers and instances: a row per (issuer, jti) in
the shared database until the token expires, inserted only if absent (a unique key decides).

When the database is away the check falls back to this process's memory (logged): hook calls keep
working, and replays within one worker are still refused."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import datetime

from sqlalchemy import Connection, delete
from sqlalchemy.exc import SQLAlchemyError

from cds_service.store.card_log import utc_now
from cds_service.store.database import Database
from cds_service.store.sql import insert_new_rows
from cds_service.store.tables import seen_jti

log = logging.getLogger("cds_service.auth")


class ReplayCache:
    def __init__(self, database: Database, *, purge_every_seconds: float = 60.0) -> None:
        self.database = database
        self.purge_every = purge_every_seconds
        self._last_purge = float("-inf")
        self._memory: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def first_use(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        key = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()
        if self._memory and not self._first_use_in_memory(key, expires_at):
            return False  # seen while the database was away
        try:
            if not self.database.ensure_schema():
                raise ConnectionError("schema not ready")
            with self.database.engine.begin() as connection:
                self._purge(connection)
                return insert_new_rows(connection, seen_jti, [{"key": key, "expires_at": expires_at}]) == 1
        except (SQLAlchemyError, ConnectionError) as error:
            failure = {"error": type(error).__name__}
            log.warning("replay cache in process memory: database unavailable", extra=failure)
            return self._first_use_in_memory(key, expires_at)

    def _purge(self, connection: Connection) -> None:
        now = time.monotonic()
        if now - self._last_purge < self.purge_every:
            return
        self._last_purge = now
        connection.execute(delete(seen_jti).where(seen_jti.c.expires_at < utc_now()))

    def _first_use_in_memory(self, key: str, expires_at: datetime) -> bool:
        with self._lock:
            now = utc_now()
            for old in [k for k, until in self._memory.items() if until < now]:
                del self._memory[old]
            if key in self._memory:
                return False
            self._memory[key] = expires_at
            return True
