"""Fetching what the EHR did not prefetch from its `fhirServer` (CDS Hooks 2.0.1 §prefetch).

The service's own prefetch templates are rendered and read in parallel, one task per key on a
shared thread pool, all inside the hook call's one budget. The token only ever goes to the origin
of `fhirServer`: next links and redirects elsewhere are refused, never followed. Nothing here logs
URLs (they hold patient ids) or the token.
"""

from __future__ import annotations

import ctypes
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import orjson
import requests

from cds_service.config.settings import Settings
from cds_service.hooks.prefetch import FailureKind, Fetched, FetchFailed, FetchOutcome, FetchTask, read_page
from cds_service.hooks.request import HookRequest
from cds_service.outbound.deadlines import IPNetwork, address_policy, deadline_scope, deadline_session

log = logging.getLogger("cds_service.hooks.fhir_client")

_TOKEN = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9.]*)\s*\}\}")
# CDS Hooks 2.0 user tokens: the id part of context.userId when it is of that type.
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_RETRIES = 3
MAX_REDIRECTS = 3
BACKOFF_SECONDS = 0.1
CHUNK_BYTES = 64 * 1024
TRIM_AFTER_BYTES = 4 * 1024 * 1024
"""After a body this large is released, free memory goes back to the system (glibc keeps it)."""


def release_memory() -> None:
    """Give freed heap back to the system (glibc malloc_trim); nothing elsewhere."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()
_M_MMAP_THRESHOLD = -3


def keep_big_buffers_returnable() -> None:
    """Allocations of 1 MiB and more get their own mapping, returned to the system when freed.
    glibc's default raises that threshold to the largest block freed so far (up to 32 MiB), after
    which hostile-sized bodies come from the heap and stay in the worker (measured: +100 MB kept)."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)


class FetchError(Exception):
    """One key cannot be had; `kind` is all that reaches the client (never a URL or token)."""

    def __init__(self, kind: FailureKind, status: int | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class FetchLimits:
    allow_http: bool = False
    max_pages: int = 20
    max_resources: int = 10_000
    max_response_bytes: int = 32 * 1024 * 1024
    max_call_bytes: int = 64 * 1024 * 1024
    max_json_containers: int = 1_000_000
    page_size: int = 200
    allowed_networks: tuple[IPNetwork, ...] = ()
    check_addresses: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        return cls(
            allow_http=settings.allow_http_fhir,
            max_pages=settings.fhir_max_pages,
            max_resources=settings.fhir_max_resources,
            max_response_bytes=settings.fhir_max_response_bytes,
            max_call_bytes=settings.fhir_max_call_bytes,
            max_json_containers=settings.fhir_max_json_containers,
            page_size=settings.fhir_page_size,
            allowed_networks=settings.fhir_networks(),
        )

    def address_allowed(self) -> Callable[[str], bool] | None:
        """Public addresses only; loopback for local sandboxes (with CDS_ALLOW_HTTP_FHIR)."""
        if not self.check_addresses:
            return None
        return address_policy(allow_loopback=self.allow_http, networks=self.allowed_networks)


class _CallBytes:
    """Bytes read so far by all keys of one hook call, against the per-call cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            self.used += size
            return self.used <= self.cap


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL without credentials; None otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def check_base(fhir_server: str, allow_http: bool, allowed_origins: tuple[str, ...] | None = None) -> str:
    """The fhirServer base without a trailing slash, or why it may not be used. `allowed_origins`
    (the calling issuer's fhirServer origins, when its registration names some) binds it further."""
    origin = _origin(fhir_server)
    parts = urlsplit(fhir_server)
    if origin is None or parts.query or parts.fragment:
        raise FetchError("bad-fhir-server")
    if origin[0] == "http" and not allow_http:
        raise FetchError("not-https")
    if allowed_origins is not None and origin not in {_origin(o) for o in allowed_origins}:
        raise FetchError("not-issuer-origin")
    return fhir_server.rstrip("/")


def render(template: str, request: HookRequest) -> str:
    """A prefetch template with its tokens replaced (URL-encoded); unknown or absent -> unrenderable."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found: Any = None
        if name.startswith("context."):
            found = request.context.get(name.removeprefix("context."))
        elif name in _USER_TOKENS:
            kind, _, rid = (request.user_id or "").partition("/")
            found = rid if kind == _USER_TOKENS[name] else None
        if not isinstance(found, str) or not found:
            raise FetchError("unrenderable")
        return quote(found, safe="")

    return _TOKEN.sub(value, template)


def is_search(relative: str) -> bool:
    """`Type?params` or `Type` is a search; `Type/id` is a read."""
    path, sep, _ = relative.partition("?")
    return bool(sep) or "/" not in path.strip("/")


def with_page_size(relative: str, page_size: int) -> str:
    """Ask for big pages (fewer round trips) unless the template sets _count itself."""
    if page_size <= 0 or not is_search(relative):
        return relative
    _, sep, query = relative.partition("?")
    if any(name == "_count" for name, _ in parse_qsl(query, keep_blank_values=True)):
        return relative
    return f"{relative}{'&' if sep else '?'}_count={page_size}"


def retry_wait(response: requests.Response, attempt: int) -> float:
    """Seconds to wait before retrying: Retry-After (seconds or HTTP-date), else jittered backoff."""
    header = response.headers.get("Retry-After", "").strip()
    if header.isdigit():
        return float(header)
    if header:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            aware = when if when.tzinfo else when.replace(tzinfo=UTC)
            return max(0.0, (aware - datetime.now(UTC)).total_seconds())
    return float(BACKOFF_SECONDS * 2**attempt * (0.5 + random.random() / 2))


class FhirFetcher:
    """The app's one FHIR client. Each pool thread keeps its own keep-alive Session, because a
    requests.Session is not documented as thread-safe; sessions live as long as the pool."""

    def __init__(
        self, limits: FetchLimits, executor: Executor, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.limits = limits
        self._executor = executor
        keep_big_buffers_returnable()
        self._sleep = sleep
        self._local = threading.local()

    def fetch(
        self, request: HookRequest, tasks: Mapping[str, FetchTask], deadline: float
    ) -> dict[str, FetchOutcome]:
        try:
            base = check_base(request.fhir_server or "", self.limits.allow_http, request.allowed_fhir_origins)
        except FetchError as error:
            return {key: self._failed(key, error) for key in tasks}
        budget = _CallBytes(self.limits.max_call_bytes)
        futures = {
            key: self._executor.submit(self._fetch_key, base, request, task, deadline, budget)
            for key, task in tasks.items()
        }
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        outcomes: dict[str, FetchOutcome] = {}
        for key, future in futures.items():
            if future.done():
                result = future.result()
            else:  # still queued or in flight at the deadline: its sockets are being shut down now
                future.cancel()
                result = FetchError("timeout")
            outcomes[key] = result if isinstance(result, Fetched) else self._failed(key, result)
        return outcomes

    @staticmethod
    def _failed(key: str, error: FetchError) -> FetchFailed:
        log.warning("FHIR fetch failed", extra={"key": key, "kind": error.kind, "status": error.status})
        return FetchFailed(error.kind)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            # No netrc credentials or proxies from the environment: the Authorization header we
            # set is the only one sent, and only to fhirServer. Its requests end at the deadline.
            session = deadline_session()
            self._local.session = session
        return session

    def _fetch_key(
        self, base: str, request: HookRequest, task: FetchTask, deadline: float, budget: _CallBytes
    ) -> Fetched | FetchError:
        """Runs on a pool thread; the caller logs failures, once, even for a straggler it gave up on.
        Every socket it uses is shut down at the deadline, so the thread is free by then."""
        with deadline_scope(deadline, self.limits.address_allowed()) as scope:
            try:
                result: Fetched | FetchError = Fetched(self._read_all(base, request, task, deadline, budget))
            except FetchError as error:
                # A fresh error: the raised one's traceback holds the frames (and the body buffers).
                result = FetchError(error.kind, error.status)
        if budget.used >= TRIM_AFTER_BYTES:
            release_memory()  # the buffers are gone by now; give their pages back
        if scope.refused:
            return FetchError("forbidden-address")
        if scope.fired or time.monotonic() > deadline:
            return FetchError("timeout")
        return result

    def _read_all(
        self, base: str, request: HookRequest, task: FetchTask, deadline: float, budget: _CallBytes
    ) -> list[Any]:
        """Every page of one key: same origin only, no URL twice, within the caps."""
        if task.next_url is not None:
            url: str | None = urljoin(f"{base}/", task.next_url)
            may_be_missing = False
        else:
            relative = with_page_size(render(task.query.template, request).lstrip("/"), self.limits.page_size)
            url = f"{base}/{relative}"
            may_be_missing = not is_search(relative)  # a read of an absent resource is no data
        limits = self.limits
        resources: list[Any] = []
        seen: set[str] = set()
        while url is not None:
            self._check_origin(base, url)
            if url in seen:
                raise FetchError("link-loop")
            seen.add(url)
            if len(seen) > limits.max_pages:
                raise FetchError("too-large")
            value = self._get_json(url, base, request.access_token, deadline, may_be_missing, budget)
            if value is None:
                return resources
            if not isinstance(value, dict) or value.get("resourceType") in (None, "OperationOutcome"):
                raise FetchError("server-error")
            try:
                page = read_page(value)
            except ValueError:
                raise FetchError("server-error") from None
            resources.extend(page.resources)
            if task.have + len(resources) > limits.max_resources:
                raise FetchError("too-large")
            url = urljoin(url, page.next_url) if page.next_url else None
        return resources

    @staticmethod
    def _check_origin(base: str, url: str) -> None:
        if _origin(url) != _origin(base):
            raise FetchError("off-origin")

    def _get_json(
        self,
        url: str,
        base: str,
        token: str | None,
        deadline: float,
        may_be_missing: bool,
        budget: _CallBytes,
    ) -> Any:
        """One GET with retries (429 / 503) and same-origin redirects; None for a missing read."""
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        attempt = redirects = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError("timeout")
            try:
                response = self._session().get(
                    url, headers=headers, timeout=remaining, stream=True, allow_redirects=False
                )
            except requests.Timeout:
                raise FetchError("timeout") from None
            except (requests.RequestException, OSError):
                raise FetchError("unreachable") from None
            with response:
                status = response.status_code
                if status in (429, 503):
                    pause = retry_wait(response, attempt)
                    if attempt < MAX_RETRIES and time.monotonic() + pause < deadline:
                        attempt += 1
                        self._sleep(pause)
                        continue
                    raise FetchError("throttled" if status == 429 else "server-error", status)
                if status in _REDIRECTS and response.headers.get("Location"):
                    redirects += 1
                    if redirects > MAX_REDIRECTS:
                        raise FetchError("link-loop", status)
                    url = urljoin(url, response.headers["Location"])
                    self._check_origin(base, url)
                    continue
                if status in (401, 403):
                    raise FetchError("auth-refused", status)
                if status in (404, 410) and may_be_missing:
                    return None
                if status >= 500:
                    raise FetchError("server-error", status)
                if status >= 300:
                    raise FetchError("query-refused", status)
                body = self._read_body(response, deadline, budget)
            return self._decode(body, status, deadline)

    def _decode(self, body: bytearray, status: int, deadline: float) -> Any:
        """JSON within the caps: a body of millions of tiny arrays or objects would take a gigabyte
        and seconds as Python objects, so containers are counted first (cheap, over-counts only)."""
        containers = body.count(b"[") + body.count(b"{")
        if containers > self.limits.max_json_containers:
            raise FetchError("too-large", status)
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FetchError("bad-json", status) from None
        if time.monotonic() > deadline:
            raise FetchError("timeout", status)
        return value

    def _read_body(self, response: requests.Response, deadline: float, budget: _CallBytes) -> bytearray:
        """The decoded body, stopping at the per-response cap, the per-call cap or the deadline (the
        watchdog shuts the socket down then, so a trickling server cannot hold the thread)."""
        cap = self.limits.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError("too-large", response.status_code)
        body = bytearray()
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                if len(body) + len(chunk) > cap or not budget.take(len(chunk)):
                    raise FetchError("too-large", response.status_code)
                if time.monotonic() > deadline:
                    raise FetchError("timeout", response.status_code)
                body += chunk
        except (requests.RequestException, OSError):
            kind: FailureKind = "timeout" if time.monotonic() >= deadline else "unreachable"
            raise FetchError(kind, response.status_code) from None
        return body
