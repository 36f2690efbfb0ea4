"""JWKS fetched over HTTPS and cached; an unknown `kid` triggers a refresh, at most once per interval
per URL (so a flood of made-up kids cannot make us hammer the EHR)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from cds_service.outbound.deadlines import deadline_scope, deadline_session

log = logging.getLogger("cds_service.auth")

MAX_JWKS_BYTES = 256 * 1024
JwkSet = Mapping[str, Mapping[str, Any]]
"""Signing keys by `kid`, as raw JWK objects."""


def keys_by_kid(jwks: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Signature keys of a JWKS by kid; encryption keys and keys without a kid are left out."""
    keys = jwks.get("keys")
    found: dict[str, Mapping[str, Any]] = {}
    if not isinstance(keys, list):
        return found
    for key in keys:
        if isinstance(key, dict) and isinstance(key.get("kid"), str) and key.get("use", "sig") == "sig":
            found[key["kid"]] = key
    return found


def fetch_jwks(url: str, timeout: float) -> dict[str, Mapping[str, Any]]:
    """One JWKS, read within `timeout` seconds in total (connect, headers and body), or an error."""
    deadline = time.monotonic() + timeout
    with deadline_scope(deadline) as scope, deadline_session() as session:
        response = session.get(url, timeout=timeout, allow_redirects=False, stream=True)
        with response:
            response.raise_for_status()
            body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
        if scope.fired:
            raise TimeoutError("JWKS fetch past its deadline")
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("JWKS too large")
    return keys_by_kid(orjson.loads(body))


@dataclass
class _Entry:
    keys: JwkSet = field(default_factory=dict)
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """Each URL has its own lock, held across its fetch: a slow JWKS endpoint of one issuer never
    delays another issuer's calls, and callers of the same URL wait at most one fetch's timeout
    (then answer from what is cached)."""

    def __init__(
        self,
        *,
        ttl_seconds: float = 3600,
        min_refresh_seconds: float = 60,
        timeout: float = 3.0,
        fetch: Callable[[str, float], dict[str, Mapping[str, Any]]] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.min_refresh = min_refresh_seconds
        self.timeout = timeout
        self._fetch = fetch
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # guards _entries only, never held across I/O

    def _entry(self, url: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(url, _Entry())

    def key(self, url: str, kid: str) -> Mapping[str, Any] | None:
        """The key `kid` of the JWKS at `url`, refreshing when stale or when the kid is unknown."""
        entry = self._entry(url)
        if not entry.lock.acquire(timeout=self.timeout):
            return entry.keys.get(kid)  # another call is fetching this URL: use what is cached
        try:
            now = self._clock()
            stale = now - entry.fetched_at >= self.ttl
            unknown = kid not in entry.keys
            if (stale or unknown) and now - entry.attempted_at >= self.min_refresh:
                entry.attempted_at = now
                try:
                    entry.keys = self._fetch(url, self.timeout)
                    entry.fetched_at = now
                except Exception as error:  # any transport or format failure: no key, a 401
                    log.warning("JWKS fetch failed", extra={"jwks_url": url, "error": type(error).__name__})
            return entry.keys.get(kid)
        finally:
            entry.lock.release()
