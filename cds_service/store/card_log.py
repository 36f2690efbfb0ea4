"""Recording every issued card off the hot path: the hook puts a small row on a queue (microseconds)
and one writer thread per process inserts batches. A database that is away delays rows (kept and
retried, bounded) but never fails or slows a hook call.

The writer gathers what arrives within `linger_seconds` of a card into one transaction: one
transaction costs ~0.35 ms of CPU (SQLAlchemy, the commit), a row in a batch ~0.02 ms, and under
load the writer otherwise wrote one card per transaction, taking GIL time from the hook calls.
Feedback does not need the row yet: this process's queued cards are looked up directly and another
worker's are waited for (up to a second, feedback/routes.py); `flush` cuts the linger short."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select

from cds_service.clock import utc_now
from cds_service.core.card_builder import FINDING_EXTENSION
from cds_service.store.database import Database
from cds_service.store.sql import insert_rows_now
from cds_service.store.tables import issued_cards

log = logging.getLogger("cds_service.store")


@dataclass(frozen=True)
class IssuedCard:
    """What a card said, without anything that identifies the patient."""

    card_uuid: str
    service_id: str
    recommendation: str
    indicator: str
    contraindications: str
    issued_at: datetime
    suggestions: str | None = None
    """JSON list of the card's suggestion uuids (None: not known, recorded before migration 0002)."""
    override_reasons: str | None = None
    """JSON list of the [system, code] pairs the card offered as override reasons."""

    def suggestion_ids(self) -> frozenset[str] | None:
        return None if self.suggestions is None else frozenset(orjson.loads(self.suggestions))

    def reason_codes(self) -> frozenset[tuple[str, str]] | None:
        if self.override_reasons is None:
            return None
        return frozenset((system, code) for system, code in orjson.loads(self.override_reasons))


class CardRecorder:
    def __init__(
        self,
        database: Database,
        *,
        batch_size: int = 500,
        max_pending: int = 100_000,
        retry_seconds: float = 1.0,
        linger_seconds: float = 0.05,
    ) -> None:
        self.database = database
        self.batch_size = batch_size
        self.linger_seconds = linger_seconds
        self.max_pending = max_pending
        self.retry_seconds = retry_seconds
        self.dropped = 0
        self._start_lock = threading.Lock()
        self._giving_up = threading.Event()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush, 2.0)

    def _reset(self) -> None:
        """A fresh queue and no writer: threads and locks do not survive a fork."""
        self._queue: queue.Queue[IssuedCard] = queue.Queue(maxsize=self.max_pending)
        self._pending: dict[str, IssuedCard] = {}
        """Cards queued and not written yet, by uuid: feedback may arrive before the row does."""
        self._writer: threading.Thread | None = None
        self._hurry = threading.Event()
        """Set by `flush`: write what is queued now instead of lingering for more."""
        self._pid = os.getpid()

    def record(self, card: IssuedCard) -> None:
        """Hot path: enqueue and return; never raises, never blocks."""
        if self._writer is None or self._pid != os.getpid():
            self._start_writer()
        self._pending[card.card_uuid] = card
        try:
            self._queue.put_nowait(card)
        except queue.Full:
            self._pending.pop(card.card_uuid, None)
            self.dropped += 1

    def pending(self, card_uuid: str) -> IssuedCard | None:
        """A card this process issued whose row is not written yet (or None)."""
        return self._pending.get(card_uuid)

    def record_card(self, card: Mapping[str, Any], service_id: str) -> None:
        """Record one card we answered with; a malformed card or anything else is logged, not raised."""
        try:
            self.record(issued_card(card, service_id, utc_now()))
        except Exception:
            log.exception("card not recorded")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every card recorded so far is written (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            self._hurry.set()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def give_up_retrying(self) -> None:
        """Drop rows waiting for a database that is away instead of retrying (tests, shutdown)."""
        self._giving_up.set()

    def _start_writer(self) -> None:
        with self._start_lock:
            if self._pid != os.getpid():
                self._reset()
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="card-recorder", daemon=True)
                self._writer.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            self._hurry.wait(self.linger_seconds)
            self._hurry.clear()
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)
            for card in batch:
                self._pending.pop(card.card_uuid, None)
                self._queue.task_done()

    def _write(self, batch: list[IssuedCard]) -> None:
        rows = [vars(card).copy() for card in batch]  # its fields, without asdict's deep copies
        attempts = 0
        failures: tuple[type[Exception], ...] = (*self.database.errors, ConnectionError)
        while True:
            attempts += 1
            try:
                if not self.database.ensure_schema():
                    raise ConnectionError("schema not ready")
                insert_rows_now(self.database.engine, issued_cards, rows)
                return
            except failures as error:
                # Five minutes away, or told to give up: these rows are dropped (and counted).
                if attempts * self.retry_seconds >= 300 or self._giving_up.is_set():
                    self.dropped += len(rows)
                    log.error(
                        "issued cards dropped", extra={"cards": len(rows), "error": type(error).__name__}
                    )
                    return
                if attempts == 1:
                    log.warning(
                        "issued cards not recorded yet, retrying",
                        extra={"cards": len(rows), "error": type(error).__name__},
                    )
                self._giving_up.wait(self.retry_seconds)


def issued_card(card: Mapping[str, Any], service_id: str, now: datetime) -> IssuedCard:
    """The row for one card of ours (every card carries the structured finding)."""
    found = card["extension"][FINDING_EXTENSION]
    codes = " ".join(sorted({c["code"] for c in found.get("contraindications", ())}))
    suggestions = [s["uuid"] for s in card.get("suggestions", ()) if "uuid" in s]
    reasons = [[r.get("system", ""), r["code"]] for r in card.get("overrideReasons", ())]
    return IssuedCard(
        card["uuid"],
        service_id,
        found["recommendation"],
        card["indicator"],
        codes,
        now,
        orjson.dumps(suggestions).decode(),
        orjson.dumps(reasons).decode(),
    )


def recorded_cards(database: Database, card_uuids: Iterable[str]) -> dict[str, IssuedCard]:
    """The recorded cards among `card_uuids`, by uuid (SQLAlchemyError when the database is away)."""
    wanted = sorted(set(card_uuids))
    found: dict[str, IssuedCard] = {}
    with database.engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            query = select(issued_cards).where(issued_cards.c.card_uuid.in_(wanted[start : start + 500]))
            for row in connection.execute(query).mappings():
                found[row["card_uuid"]] = IssuedCard(**dict(row))
    return found


_recorders: dict[str, CardRecorder] = {}
_recorders_lock = threading.Lock()


def recorder_for(database: Database) -> CardRecorder:
    """One recorder (queue and writer thread) per database in this process."""
    with _recorders_lock:
        found = _recorders.get(database.url)
        if found is None:
            found = _recorders[database.url] = CardRecorder(database)
        return found


def flush_all(timeout: float = 5.0) -> None:
    """Write what is queued before the process ends (gunicorn's worker_exit hook, atexit)."""
    for recorder in list(_recorders.values()):
        recorder.flush(timeout)
