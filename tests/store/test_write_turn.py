"""SQLite writers on the hot path (the JWT replay check) take turns through `Database.write_turn`:
across processes too (an flock), so a writer waits for the lock's release, not in SQLite's busy
handler that sleeps up to 100 ms a time."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

from cds_service.store.database import Database


def _hold_turn(
    url: str, held: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event
) -> None:
    with Database(url).write_turn():
        held.set()
        release.wait(10)


def test_a_writer_in_another_process_waits_for_the_turn(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cds.replay.sqlite"
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_turn, args=(url, held, release))
    holder.start()
    try:
        assert held.wait(30)
        got_it = threading.Event()

        def take_turn() -> None:
            with Database(url).write_turn():
                got_it.set()

        waiter = threading.Thread(target=take_turn)
        waiter.start()
        assert not got_it.wait(0.3), "took the turn while another process held it"
        release.set()
        assert got_it.wait(10)
        waiter.join(10)
    finally:
        release.set()
        holder.join(10)
    assert (tmp_path / "cds.replay.sqlite.lock").exists()


def test_threads_of_one_process_take_turns_too(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/cds.sqlite")
    inside, overlap = 0, []
    lock = threading.Lock()

    def write() -> None:
        nonlocal inside
        for _ in range(200):
            with database.write_turn():
                with lock:
                    inside += 1
                    overlap.append(inside)
                time.sleep(0)  # let another thread run inside the turn, if it could enter
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(overlap) == 1


def test_an_in_memory_database_needs_no_lock_file(tmp_path: Path) -> None:
    with Database("sqlite://").write_turn():
        pass
    assert list(tmp_path.iterdir()) == []


def _migrate_at_once(url: str, start: multiprocessing.synchronize.Barrier, results: Any) -> None:
    start.wait(30)
    results.put(Database(url).ensure_schema())


def test_workers_starting_together_migrate_a_new_file_in_turn(tmp_path: Path) -> None:
    """gunicorn's workers meet a new replay file at their first call, all at once: the one that
    lost SQLite's race used to log "database unavailable" and check replays in its own memory for
    the 5 s schema retry (seen in 2 of 3 load-benchmark starts)."""
    context = multiprocessing.get_context("spawn")
    for attempt in range(3):
        url = f"sqlite:///{tmp_path}/cds.replay.{attempt}.sqlite"
        start, results = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_migrate_at_once, args=(url, start, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(10)
        assert outcomes == [True] * 4, f"attempt {attempt}: {outcomes}"
