"""Refusing a JWT id seen before, across gunicorn workers and instances: a row per (issuer, jti) in
the shared database until the token expires, inserted only if absent (a unique key decides).

When the database is away the check falls back to a bounded cache in this process's memory: hook
calls keep working and replays within one worker are still refused. The database decides whenever
it answers; the memory is consulted only while it does not (a failed write never meets its own
fallback entry, so a fresh jti is never called a replay). The outage is logged once and counted in
/metrics; on recovery the ids seen meanwhile are written to the database and the memory is emptied,
so nothing is left to scan on the hot path."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import Connection, delete

from cds_service.clock import utc_now
from cds_service.store.database import Database
from cds_service.store.sql import insert_new_row, insert_new_row_now, insert_new_rows
from cds_service.store.tables import seen_jti
from cds_service.web.metrics import record_database_outage, record_replay_check, record_replay_memory

log = logging.getLogger("cds_service.auth")

DEFAULT_MEMORY_ENTRIES = 100_000
"""Tokens live minutes; 100k ids (about 20 MB) cover hundreds of calls a second through an outage."""
RETRY_SECONDS = 1.0
"""While the database is away, one call a second tries it; the others go straight to memory."""


class ReplayCache:
    def __init__(
        self,
        database: Database,
        *,
        purge_every_seconds: float = 60.0,
        max_memory_entries: int = DEFAULT_MEMORY_ENTRIES,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.database = database
        self.purge_every = purge_every_seconds
        self.max_memory = max_memory_entries
        self.retry_seconds = retry_seconds
        self._last_purge = float("-inf")
        self._memory: OrderedDict[str, datetime] = OrderedDict()  # insertion order ~ expiry order
        self._lock = threading.Lock()
        self._outage = False
        self._next_try = float("-inf")
        self.evicted = 0
        self._errors: tuple[type[Exception], ...] = (*database.errors, ConnectionError)

    @property
    def in_outage(self) -> bool:
        return self._outage

    def memory_size(self) -> int:
        return len(self._memory)

    def first_use(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        key = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()
        if self._outage and time.monotonic() < self._next_try:
            return self._first_use_in_memory(key, expires_at)
        try:
            if not self.database.ensure_schema():
                raise ConnectionError("schema not ready")
            row = {"key": key, "expires_at": expires_at}
            with self.database.write_turn():
                if self._outage or self._purge_due():
                    with self.database.engine.begin() as connection:
                        if self._outage:
                            self._recover(connection)
                        self._purge(connection)
                        fresh = insert_new_row(connection, seen_jti, row)
                else:  # every other call: the insert alone, on the driver connection
                    fresh = insert_new_row_now(self.database.engine, seen_jti, row)
        except self._errors as error:
            self._enter_outage(type(error).__name__)
            return self._first_use_in_memory(key, expires_at)
        record_replay_check("database")
        return fresh

    def _enter_outage(self, error: str) -> None:
        with self._lock:
            self._next_try = time.monotonic() + self.retry_seconds
            if self._outage:
                return
            self._outage = True
        record_database_outage("replay")
        log.warning("replay cache in process memory: database unavailable", extra={"error": error})

    def _recover(self, connection: Connection) -> None:
        """Back from an outage: what memory saw goes to the database (so other workers refuse it
        too), in the same transaction as the call that found the database back."""
        with self._lock:
            now = utc_now()
            rows = [{"key": k, "expires_at": until} for k, until in self._memory.items() if until >= now]
        if rows:
            insert_new_rows(connection, seen_jti, rows)
        with self._lock:
            self._memory.clear()
            self._outage = False
        record_replay_memory(0)
        log.info("replay cache back in the database", extra={"carried_over": len(rows)})

    def _purge_due(self) -> bool:
        return time.monotonic() - self._last_purge >= self.purge_every

    def _purge(self, connection: Connection) -> None:
        if not self._purge_due():
            return
        self._last_purge = time.monotonic()
        connection.execute(delete(seen_jti).where(seen_jti.c.expires_at < utc_now()))

    def _first_use_in_memory(self, key: str, expires_at: datetime) -> bool:
        record_replay_check("memory")
        with self._lock:
            now = utc_now()
            # Oldest first: expired ids leave from the front, a full cache drops its oldest.
            while self._memory:
                oldest_key, until = next(iter(self._memory.items()))
                if until >= now and len(self._memory) < self.max_memory:
                    break
                del self._memory[oldest_key]
                if until >= now:
                    self.evicted += 1
            if key in self._memory:
                return False
            self._memory[key] = expires_at
            size = len(self._memory)
        record_replay_memory(size)
        return True
