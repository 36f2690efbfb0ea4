"""Outgoing HTTP that ends at a deadline whatever the server does (connect, TLS, headers, a trickled
body), for the FHIR client and the JWKS fetches.

Socket timeouts bound each read, not a whole request: a server sending one byte a second keeps a
thread forever. So every socket opened or reused inside `deadline_scope` is handed to one watchdog
thread per process, which shuts the socket down at the deadline; the blocked read then returns at
once and the thread is free. Connections are also checked against an address policy after
connecting (`peer_check`), so a name that resolves elsewhere than it did when checked is refused.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Scope:
    deadline: float
    peer_check: Callable[[str], bool] | None
    armed: list[_Watch] = field(default_factory=list)
    fired: bool = False
    refused: bool = False
    """A connection was refused by `peer_check` (before connecting, or at once after)."""


@dataclass(order=True)
class _Watch:
    deadline: float
    seq: int
    sock: socket.socket = field(compare=False)
    scope: _Scope = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class _Watchdog:
    """One thread per process that shuts down sockets whose deadline passed."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._heap: list[_Watch] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._seq = itertools.count()

    def watch(self, sock: socket.socket, scope: _Scope) -> None:
        item = _Watch(scope.deadline, next(self._seq), sock, scope)
        with self._cond:
            heapq.heappush(self._heap, item)
            scope.armed.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()

    def cancel(self, scope: _Scope) -> None:
        with self._cond:
            for item in scope.armed:
                item.cancelled = True
            scope.armed.clear()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                first = self._heap[0]
                wait = first.deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                first.scope.fired = True
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also for TLS sockets: it only touches the file
                # descriptor (never the TLS state another thread is using), and wakes its reads.
                socket.socket.shutdown(first.sock, socket.SHUT_RDWR)


_watchdog = _Watchdog()
_local = threading.local()


class DeadlineExceededError(Exception):
    """The scope's deadline passed and its sockets were shut down."""


class AddressRefusedError(OSError):
    """The host resolves to, or connected to, an address the policy forbids (nothing was sent)."""


def _current() -> _Scope | None:
    scope: _Scope | None = getattr(_local, "scope", None)
    return scope


@contextlib.contextmanager
def deadline_scope(deadline: float, peer_check: Callable[[str], bool] | None = None) -> Iterator[_Scope]:
    """Every request made by this thread inside the block ends by `deadline` (time.monotonic)."""
    scope = _Scope(deadline, peer_check)
    outer = _current()
    _local.scope = scope
    try:
        yield scope
    finally:
        _watchdog.cancel(scope)
        _local.scope = outer


def _arm(sock: socket.socket | None) -> None:
    scope = _current()
    if scope is None or sock is None:
        return
    if scope.peer_check is not None:
        try:
            peer = sock.getpeername()[0]
        except OSError:
            peer = ""
        if not scope.peer_check(str(peer)):
            scope.refused = True
            with contextlib.suppress(OSError):
                sock.close()
            raise AddressRefusedError("address refused by the outbound policy")
    if time.monotonic() >= scope.deadline:
        scope.fired = True
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        return
    _watchdog.watch(sock, scope)


def _check_resolved(host: str, port: int) -> None:
    """Before connecting: every address the name resolves to must pass the policy, so no packet
    goes to a forbidden address (the check after connecting catches a name that changed since)."""
    scope = _current()
    if scope is None or scope.peer_check is None:
        return
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return  # unresolvable: connecting fails on its own
    if not found or not all(scope.peer_check(str(info[4][0])) for info in found):
        scope.refused = True
        raise AddressRefusedError("address refused by the outbound policy")


class _DeadlineHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        _check_resolved(self.host, self.port)
        sock = super()._new_conn()
        _arm(sock)  # before TLS: a trickled handshake is bounded too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection reused in a new scope
            _arm(self.sock)
        super().request(*args, **kwargs)


class _DeadlineHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        _check_resolved(self.host, self.port)
        sock = super()._new_conn()
        _arm(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:
            _arm(self.sock)
        super().request(*args, **kwargs)


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


def address_policy(*, allow_loopback: bool, networks: Sequence[IPNetwork] = ()) -> Callable[[str], bool]:
    """Public unicast addresses only; loopback when allowed (local sandboxes), and any address inside
    `networks` (an EHR on the hospital's private network, named in the configuration)."""

    def allowed(text: str) -> bool:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in networks):
            return True
        if address.is_loopback:
            return allow_loopback
        return address.is_global and not address.is_multicast

    return allowed


def deadline_session() -> requests.Session:
    """A Session whose requests honour `deadline_scope`; environment proxies and netrc ignored."""
    session = requests.Session()
    session.trust_env = False
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
