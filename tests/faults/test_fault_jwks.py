"""Fault: JWKS endpoints that trickle or hang up, against a real gunicorn (loopback only).

A slow JWKS endpoint of one issuer must not stall another issuer's calls, a fetch must end at its
total deadline, and every transport failure (urllib3's ProtocolError included) is a 401, never a 500.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.builders import REFERRAL_URL, condition, hook_body
from support.hostile_http import HostileServer, answer, hang_up_mid_body, trickle
from support.live_server import LiveServer
from support.tokens import BASE, Ehr, issuer_file

AUD = BASE + REFERRAL_URL
BODY = hook_body([condition("fx", "M80.08XA")])
JWKS_TIMEOUT = 3.0  # JwksCache's total deadline per fetch


@pytest.fixture(scope="module")
def slow_ehr() -> Ehr:
    return Ehr("https://slow-ehr.example.org", kid="slow-1")


@pytest.fixture(scope="module")
def fast_ehr() -> Ehr:
    return Ehr("https://fast-ehr.example.org", kid="fast-1")


@pytest.fixture(scope="module")
def broken_ehr() -> Ehr:
    return Ehr("https://broken-ehr.example.org", kid="broken-1")


@pytest.fixture(scope="module")
def servers(
    slow_ehr: Ehr, fast_ehr: Ehr, broken_ehr: Ehr, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, HostileServer, HostileServer, HostileServer]]:
    with (
        HostileServer(trickle(json.dumps(slow_ehr.jwks).encode(), bytes_per_second=2)) as slow,
        HostileServer(answer(json.dumps(fast_ehr.jwks).encode(), content_type="application/json")) as fast,
        HostileServer(hang_up_mid_body(json.dumps(broken_ehr.jwks).encode()[:40])) as broken,
    ):
        folder = tmp_path_factory.mktemp("jwks")
        issuers = issuer_file(
            folder,
            {"iss": slow_ehr.iss, "jwks_url": slow.url + "/jwks.json"},
            {"iss": fast_ehr.iss, "jwks_url": fast.url + "/jwks.json"},
            {"iss": broken_ehr.iss, "jwks_url": broken.url + "/jwks.json"},
        )
        env = {
            "CDS_AUTH": "jwt",
            "CDS_TRUSTED_ISSUERS": str(issuers),
            "CDS_PUBLIC_BASE_URL": BASE,
            "CDS_DATABASE_URL": f"sqlite:///{folder}/cds.sqlite",
            "CDS_JWKS_REFRESH_MIN_SECONDS": "0",
        }
        server = LiveServer(env, workers=1).start()
        yield server, slow, fast, broken
        server.stop()


def _call(server: LiveServer, token: str) -> tuple[int, float]:
    started = time.monotonic()
    response = requests.post(
        server.url + REFERRAL_URL, json=BODY, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return response.status_code, time.monotonic() - started


def test_a_trickling_jwks_ends_at_its_deadline_and_does_not_stall_other_issuers(
    servers: tuple[LiveServer, HostileServer, HostileServer, HostileServer], slow_ehr: Ehr, fast_ehr: Ehr
) -> None:
    server = servers[0]
    slow_result: list[tuple[int, float]] = []
    slow_call = threading.Thread(target=lambda: slow_result.append(_call(server, slow_ehr.token(AUD))))
    slow_call.start()
    time.sleep(0.3)  # the slow issuer's fetch is under way
    fast = [_call(server, fast_ehr.token(AUD)) for _ in range(3)]
    slow_call.join(timeout=20)
    print(f"slow issuer: {slow_result}, other issuer: {fast}")
    assert [status for status, _ in fast] == [200, 200, 200]
    assert max(seconds for _, seconds in fast) < 1.0  # before: stalled for 40 s behind the global lock
    ((status, seconds),) = slow_result
    assert status == 401  # the JWKS could not be had in time: no key, no entry
    assert seconds < JWKS_TIMEOUT + 1.0  # before: 40 s, ending in 500


def test_a_jwks_endpoint_hanging_up_mid_body_is_401_not_500(
    servers: tuple[LiveServer, HostileServer, HostileServer, HostileServer], broken_ehr: Ehr
) -> None:
    server, _, _, broken = servers
    status, seconds = _call(server, broken_ehr.token(AUD))
    assert broken.requests >= 1
    assert status == 401  # before: urllib3 ProtocolError uncaught, 500
    assert seconds < JWKS_TIMEOUT
    assert "Traceback" not in server.logged()


def test_slow_headers_are_bounded_too(tmp_path: Path, slow_ehr: Ehr) -> None:
    """Headers trickled a byte at a time: each read is quick, the whole fetch is not; the deadline holds."""
    from cds_service.auth.jwks import fetch_jwks

    with HostileServer(trickle(json.dumps(slow_ehr.jwks).encode(), 20, headers_too=True)) as slow:
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017, PT011 - whichever transport error; the time is the point
            fetch_jwks(slow.url + "/jwks.json", 1.0)
        assert time.monotonic() - started < 1.5
