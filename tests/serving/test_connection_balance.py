"""Connections are shared out between gunicorn workers: EHRs keep connections open, and Linux wakes
the same waiting worker first, so without this one worker held 26 of 32 benchmark connections while
the other idled. The policy is unit-tested; a real `spine-cds serve` with two workers proves it."""

from __future__ import annotations

import http.client
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]
from support.live import LiveServer, serve

from cds_service.serving import worker
from cds_service.serving.worker import assign_slot, may_accept, over_share, release_slot


def test_a_worker_accepts_only_while_no_live_worker_holds_fewer_connections() -> None:
    free = -1
    assert may_accept(0, [0, 0, free], slot=0)
    assert may_accept(3, [3, 3], slot=1)
    assert not may_accept(4, [4, 3], slot=0)
    assert may_accept(3, [4, 3], slot=1)
    assert may_accept(9, [9, free, free], slot=0)  # alone: always
    assert may_accept(5, [5, free, 7], slot=0)  # free slots (dead or stopping workers) do not count


def test_a_worker_lets_connections_go_only_while_two_or_more_over_the_least_loaded() -> None:
    free = -1
    assert over_share(16, [16, 0], slot=0)
    assert not over_share(0, [16, 0], slot=1)
    assert not over_share(9, [9, 8], slot=0)  # one over: an odd count cannot be shared better
    assert over_share(10, [10, 8], slot=0)
    assert not over_share(12, [12, free], slot=0)  # alone (the other stopping or not started yet)
    assert over_share(6, [free, 6, 4, 5], slot=1)


def test_the_master_hands_out_free_slots_and_takes_them_back() -> None:
    server = SimpleNamespace(WORKERS={})
    first, second = SimpleNamespace(), SimpleNamespace()
    assign_slot(server, first)
    server.WORKERS[1] = first
    assign_slot(server, second)
    server.WORKERS[2] = second
    assert (first.cds_slot, second.cds_slot) == (0, 1)
    assert worker._published()[:2] == (-1, -1)  # free until each worker's event loop publishes
    worker._publish(first.cds_slot, 3)
    release_slot(first)
    del server.WORKERS[1]
    assert worker._published()[0] == -1
    third = SimpleNamespace()
    assign_slot(server, third)  # the lowest slot no live worker holds
    assert third.cds_slot == 0
    for w in (second, third):
        release_slot(w)


def _established_by_pid(port: int, pids: list[int]) -> Counter[int]:
    """Server-side established connections on `port`, per worker process (from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    found: Counter[int] = Counter()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            match = re.fullmatch(r"socket:\[(\d+)\]", target)
            if match and match.group(1) in inodes:
                found[pid] += 1
    return found


def _booted_workers(server: LiveServer, count: int) -> list[int]:
    """The worker pids once `count` have booted (ready means one worker answers)."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    pids: list[int] = []
    for _ in range(200):
        pids = [int(p) for p in children.read_text().split()]
        if len(pids) == count and all(f"Booting worker with pid: {p}" in server.log() for p in pids):
            time.sleep(0.3)  # a booted worker publishes its count when its event loop runs
            return pids
        time.sleep(0.1)
    raise AssertionError(f"{count} workers did not boot: {pids}")


def test_two_workers_share_kept_alive_connections_evenly() -> None:
    with serve(demo=False, env={"CDS_WORKERS": "2"}) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        pids = _booted_workers(server, 2)
        connections = []
        try:
            for _ in range(16):  # one after another, each kept open after its answer
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                connections.append(connection)
            assert len(pids) == 2
            per_worker = _established_by_pid(port, pids)
            assert sum(per_worker.values()) == 16
            assert max(per_worker.values()) - min(per_worker.get(p, 0) for p in pids) <= 2, per_worker
        finally:
            for connection in connections:
                connection.close()


def _ask(port: int, connection: http.client.HTTPConnection | None) -> http.client.HTTPConnection | None:
    """One call on a kept-alive connection (a new one when there is none); None when the answer
    said `Connection: close`, as a client that honours it would then reconnect."""
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    if response.getheader("Connection", "").lower() == "close":
        connection.close()
        return None
    return connection


def test_a_worker_started_late_gets_its_share_of_connections_already_open() -> None:
    """One worker serves 16 kept-alive connections alone, then a second starts (SIGTTIN, as a
    restart after a crash would): closing connections after their answer until the share is even
    moves half of them over, where without it the first worker kept all 16 for as long as the
    clients kept calling (measured: 16 / 0 after 40 rounds)."""
    with serve(demo=False, env={"CDS_WORKERS": "1"}) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        (first,) = _booted_workers(server, 1)
        connections: list[http.client.HTTPConnection | None] = [_ask(port, None) for _ in range(16)]
        assert _established_by_pid(port, [first]) == Counter({first: 16})
        server.process.send_signal(signal.SIGTTIN)
        pids = _booted_workers(server, 2)
        try:
            for _ in range(40):  # every client calls in turn, as EHRs keep doing
                connections = [_ask(port, c) for c in connections]
            per_worker = _established_by_pid(port, pids)
            assert sum(per_worker.values()) == 16
            assert max(per_worker.get(p, 0) for p in pids) - min(per_worker.get(p, 0) for p in pids) <= 2, (
                per_worker
            )
        finally:
            for connection in connections:
                if connection is not None:
                    connection.close()


def test_a_worker_holding_back_for_the_balance_looks_again_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that stopped accepting to leave connections to a less loaded one waits
    BALANCE_RECHECK_SECONDS, not gthread's second, before it decides again on fresher counts;
    at its connection limit, or stopping, it keeps gthread's wait."""
    waits: list[float] = []

    def wait(self: object, timeout: float) -> None:
        waits.append(timeout)

    monkeypatch.setattr(ThreadWorker, "wait_for_and_dispatch_events", wait)
    held = worker.ReadAheadWorker.__new__(worker.ReadAheadWorker)
    held.alive, held._accepting, held.nr_conns, held._connection_limit = True, False, 3, 1000
    held.wait_for_and_dispatch_events(1.0)
    held._accepting = True
    held.wait_for_and_dispatch_events(1.0)
    held._accepting, held.nr_conns = False, 1000  # at the limit: nothing to re-decide
    held.wait_for_and_dispatch_events(1.0)
    held.nr_conns, held.alive = 3, False  # stopping
    held.wait_for_and_dispatch_events(1.0)
    assert waits == [worker.BALANCE_RECHECK_SECONDS, 1.0, 1.0, 1.0]
