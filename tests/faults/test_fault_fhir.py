"""Fault: hostile FHIR servers against a real gunicorn worker (loopback only): trickled bodies,
huge bodies without a length, gzip bombs, millions of tiny arrays, a slow honest server.

Each case asserts the status, that the call ends within its budget, that no fetch thread stays
pinned (honest calls right after succeed), and the worker's memory afterwards."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from support.builders import PATIENT_ID, REFERRAL_URL, condition, hook_body, searchset
from support.hostile_http import Behaviour, HostileServer, endless, gzip_bomb, trickle
from support.live_server import LiveServer

BUDGET = 2.0
SLACK = 0.75  # process scheduling on a busy 2-core machine


def _fhir_answer(head: bytes) -> bytes:
    path = head.split(b" ", 2)[1].decode()
    if path.startswith("/Condition"):
        return json.dumps(searchset([condition("fx", "M80.08XA")])).encode()
    if path.startswith(f"/Patient/{PATIENT_ID}"):
        return json.dumps({"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1950-01-01"}).encode()
    return json.dumps(searchset([])).encode()


def honest(delay: float = 0.0) -> Behaviour:
    def write(conn: socket.socket, head: bytes) -> None:
        if delay:
            time.sleep(delay)
        body = _fhir_answer(head)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    return write


def nested_arrays(size: int) -> Behaviour:
    """A Bundle whose one extra member is `size` bytes of [] [] [] ... (under the byte cap)."""
    body = b'{"resourceType":"Bundle","type":"searchset","x":[' + b"[]," * (size // 3) + b"[]]}"

    def write(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    return write


def _no_prefetch(fhir_server: str) -> dict[str, Any]:
    body = hook_body(fhirServer=fhir_server, fhirAuthorization={"access_token": "t0ken"})
    body["prefetch"] = {}
    return body


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def _worker_pid(server: LiveServer) -> int:
    assert server.process is not None
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    (pid,) = children
    return int(pid)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("fault-fhir")
    env = {
        "CDS_AUTH": "off",
        "CDS_ALLOW_HTTP_FHIR": "true",
        "CDS_FHIR_BUDGET_SECONDS": str(BUDGET),
        "CDS_DATABASE_URL": f"sqlite:///{folder}/cds.sqlite",
        "CDS_RECORD_CARDS": "false",
    }
    server = LiveServer(env, workers=1).start()
    yield server
    server.stop()


def _call(server: LiveServer, fhir_server: str) -> tuple[int, float, str]:
    started = time.monotonic()
    response = requests.post(server.url + REFERRAL_URL, json=_no_prefetch(fhir_server), timeout=30)
    return response.status_code, time.monotonic() - started, response.text


def test_trickling_servers_do_not_pin_the_fetch_threads(service: LiveServer) -> None:
    with (
        HostileServer(trickle(json.dumps(searchset([])).encode(), bytes_per_second=1)) as slow,
        HostileServer(honest()) as good,
    ):
        with ThreadPoolExecutor(6) as pool:
            trickled = list(pool.map(lambda _: _call(service, slow.url), range(6)))
        honest_after = [_call(service, good.url) for _ in range(4)]
    print(
        "trickled:",
        [(s, round(t, 2)) for s, t, _ in trickled],
        "honest:",
        [round(t, 2) for _, t, _ in honest_after],
    )
    assert {status for status, _, _ in trickled} == {412}
    assert all("conditions (timeout)" in text for _, _, text in trickled)
    # 6 calls on 4 request threads: the last two wait one budget for a thread, then run their own
    assert max(seconds for _, seconds, _ in trickled) < 2 * BUDGET + SLACK
    assert [status for status, _, _ in honest_after] == [200] * 4  # before: 412 timeout for 40 s
    assert max(seconds for _, seconds, _ in honest_after) < 1.0


def test_huge_bomb_and_nested_bodies_are_too_large_fast_and_memory_returns(service: LiveServer) -> None:
    worker = _worker_pid(service)
    with HostileServer(honest()) as good:
        for _ in range(3):
            assert _call(service, good.url)[0] == 200
        baseline = _rss_kb(worker)
        cases = {
            "200 MB without Content-Length": endless(b" " * 65536, 200 * 1024 * 1024),
            "gzip bomb (1 GB inflated)": gzip_bomb(1024 * 1024 * 1024),
            "30 MB of nested arrays": nested_arrays(30 * 1024 * 1024),
        }
        peaks = {}
        for name, behaviour in cases.items():
            with HostileServer(behaviour) as hostile:
                status, seconds, text = _call(service, hostile.url)
            peaks[name] = (status, round(seconds, 2), _rss_kb(worker) - baseline)
            assert status == 412, (name, text)
            assert "conditions (too-large)" in text, name
            assert seconds < BUDGET + SLACK, name  # before: 4.0 s for the nested arrays
        for _ in range(3):
            assert _call(service, good.url)[0] == 200
        after = _rss_kb(worker)
    print("status, seconds, RSS growth kB:", peaks, "after:", after - baseline, "kB")
    assert after - baseline < 48 * 1024  # before: +256 MB kept after the 200 MB body


def test_a_slow_honest_server_is_answered_for_every_concurrent_call(service: LiveServer) -> None:
    """4 request threads x 8 keys, every FHIR answer after 1.5 s: nothing queues past the budget."""
    with HostileServer(honest(delay=1.5)) as slow, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _call(service, slow.url), range(12)))
    print("slow honest:", [(s, round(t, 2)) for s, t, _ in results])
    assert [status for status, _, _ in results] == [200] * 12  # before: 1 in 12 got 412
    for _, _, text in results:
        finding = json.loads(text)["cards"][0]["extension"]["vertebral-augmentation-cds/finding"]
        assert not finding.get("dataUnavailable"), finding  # before: 2 in 12 lost optional data
