"""SIGTERM (what Docker and Kubernetes send) lets a request already being answered finish.

A real `spine-cds serve` (gunicorn, shared config) gets a patient-view call whose body is still
arriving when the master is told to stop; the rest of the body follows and the answer must be a
normal 200 with the card, after which the server exits cleanly.
"""

from __future__ import annotations

import signal
import socket
import time
from datetime import UTC, datetime

import orjson
from support.live import ROOT, serve

from cds_service.demo.patients import demo_request, sample_draft_order
from cds_service.hooks.catalogue import REFERRAL

FIXTURES = ROOT / "fhir_fixtures"


def _read_response(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_sigterm_lets_an_in_flight_request_finish() -> None:
    today = datetime.now(UTC).date()
    body = orjson.dumps(
        demo_request(FIXTURES, "01-osteoporotic-l1-mri", REFERRAL, today, sample_draft_order())
    )
    head = (
        f"POST /cds-services/{REFERRAL.id} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    half = len(body) // 2
    with serve(demo=False, env={"CDS_GRACEFUL_TIMEOUT": "15"}) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(head + body[:half])
            time.sleep(0.5)  # the worker is now inside the request, reading its body
            stopped_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.5)
            assert server.process.poll() is None, "the server quit with a request in flight"
            sock.sendall(body[half:])
            raw = _read_response(sock)
        status_line, _, rest = raw.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 200 OK", raw[:300]
        answer = orjson.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert len(answer["cards"]) == 1
        assert server.process.wait(timeout=20) == 0
        assert time.monotonic() - stopped_at < 15, "the worker waited for the whole grace period"
        assert "Handling signal: term" in server.log()
