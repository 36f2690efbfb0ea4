"""Reading prefetch values: a Bundle (searchset, any size, possibly paged), one resource, null, or an
OperationOutcome (the client failed: treated as missing, CDS Hooks 2.0.1 §prefetch). What is
missing is fetched through a `Fetcher` (the FHIR client is one); required data that cannot be had
gives 412, optional data that cannot be had is named in `RecordData.unavailable`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypedDict, TypeVar

import msgspec
import orjson

from cds_service.core.record import view_type_of
from cds_service.core.record.fhir_json import ResourceView
from cds_service.hooks.request import HookRequest, parse_hook_body
from cds_service.web.metrics import record_fhir_fetch
from cds_service.web.responses import CdsError

FailureKind = Literal[
    "no-fhir-server",  # nothing to fetch from (no fhirServer, or no fetcher configured)
    "bad-fhir-server",  # fhirServer is not an absolute http(s) URL
    "not-https",  # plain http while CDS_ALLOW_HTTP_FHIR is off
    "unrenderable",  # the template needs a context value the request does not have
    "auth-refused",  # 401 / 403
    "throttled",  # 429 after the retries the budget allowed
    "server-error",  # 5xx, or a 200 that is not the FHIR resource asked for
    "query-refused",  # another 4xx (e.g. an unsupported search parameter)
    "timeout",  # the hook call's budget ran out
    "unreachable",  # connection refused, DNS, TLS
    "bad-json",  # the body is not JSON
    "too-large",  # over the page, resource or byte caps
    "off-origin",  # a next link or redirect to another origin than fhirServer (never followed)
    "link-loop",  # a next link or redirect already visited
    "forbidden-address",  # fhirServer resolves to loopback, private, link-local or metadata addresses
    "not-issuer-origin",  # fhirServer is not one of the calling issuer's registered origins
]


@dataclass(frozen=True)
class PrefetchQuery:
    """One prefetch key: its template, the resource type it yields, and whether the rules need it."""

    template: str
    resource_type: str
    required: bool = False


class Page(NamedTuple):
    """One prefetch value or FHIR response: candidate resources and the Bundle's next link. A
    NamedTuple: one is made per prefetch key per call, at a third of a frozen dataclass's cost."""

    resources: list[Any]
    next_url: str | None = None


@dataclass(frozen=True)
class FetchTask:
    """What to fetch for one key: the template, or the rest of a paged prefetch Bundle."""

    query: PrefetchQuery
    next_url: str | None = None
    have: int = 0  # resources already in hand, counted against the per-key cap


@dataclass(frozen=True)
class Fetched:
    resources: list[Any]


@dataclass(frozen=True)
class FetchFailed:
    kind: FailureKind


FetchOutcome = Fetched | FetchFailed


class Fetcher(Protocol):
    """Fetches every task before `deadline` (time.monotonic seconds); one outcome per key."""

    def fetch(
        self, request: HookRequest, tasks: Mapping[str, FetchTask], deadline: float
    ) -> Mapping[str, FetchOutcome]: ...


@dataclass
class RecordData:
    """Raw resources by type, the optional types that could not be had, and why (per key)."""

    resources: dict[str, list[Any]] = field(default_factory=dict)
    """Per resource type: request-body slices (msgspec.Raw) or parsed dicts, read by the core."""
    unavailable: set[str] = field(default_factory=set)
    skipped: Counter[str] = field(default_factory=Counter)
    failures: dict[str, FailureKind] = field(default_factory=dict)


def read_page(value: Mapping[str, Any]) -> Page:
    """Entries and next link of a Bundle, or the resource itself; ValueError when malformed."""
    if value.get("resourceType") != "Bundle":
        return Page([value])
    entries = value.get("entry")
    if entries is None:
        entries = []
    elif not isinstance(entries, list):
        raise ValueError("malformed entry list")
    return Page([e.get("resource") for e in entries if isinstance(e, dict)], _next_link(value.get("link")))


def _next_link(links: object) -> str | None:
    return next(
        (
            link["url"]
            for link in (links if isinstance(links, list) else ())
            if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str)
        ),
        None,
    )


class _Entry(TypedDict, total=False):
    resource: msgspec.Raw


class _Bundle(TypedDict, total=False):
    resourceType: Any
    entry: list[_Entry]
    link: Any


_bundle_decoder = msgspec.json.Decoder(_Bundle)


def _fast_page(value: msgspec.Raw, resource_type: str) -> Page | None:
    """A raw prefetch value read without parsing its resources (each stays a slice of the body);
    None for shapes that need the careful path (null, an OperationOutcome, a malformed Bundle)."""
    try:
        head = _bundle_decoder.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    kind = head.get("resourceType")
    if kind == "Bundle":
        entries = head.get("entry", ())
        return Page([e["resource"] for e in entries if "resource" in e], _next_link(head.get("link")))
    if kind == "OperationOutcome" or not isinstance(kind, str):
        return None
    return Page([value])


_CANDIDATE_TYPES = (msgspec.Raw, dict, ResourceView)


def keep_resources(candidates: list[Any], query: PrefetchQuery) -> list[Any]:
    """Everything that may be a resource; the core reader checks type and patient (one place)."""
    return [c for c in candidates if isinstance(c, _CANDIDATE_TYPES)]


V = TypeVar("V")


class _TypedEntry(msgspec.Struct, Generic[V], gc=False):
    resource: V | msgspec.UnsetType = msgspec.UNSET


class TypedBundle(msgspec.Struct, Generic[V], tag_field="resourceType", tag="Bundle", gc=False):
    """A prefetch Bundle decoded with the body, its resources straight into the reader's views."""

    entry: list[_TypedEntry[V]] = []
    link: Any = None


def _is_read(query: PrefetchQuery) -> bool:
    """A `Type/{{id}}` read answers one resource; a search answers a Bundle."""
    return "?" not in query.template


@cache
def _typed_body_decoder(
    keys: tuple[tuple[str, str, bool], ...],
) -> Callable[[bytes], dict[str, Any]] | None:
    """One decoder for the whole request body (envelope, prefetch Bundles and their resources in
    one pass, ~2x faster than decoding each slice on its own); None when a type has no view."""
    fields: dict[str, Any] = {}
    for key, resource_type, single in keys:
        view = view_type_of(resource_type)
        if view is None:
            return None
        fields[key] = (view if single else TypedBundle[view]) | None  # type: ignore[valid-type]
    typed_dict: Any = TypedDict  # built at run time from the service's keys, out of mypy's sight
    prefetch = typed_dict("_TypedPrefetch", fields, total=False)
    envelope = typed_dict(
        "_TypedEnvelope",
        {
            "hook": Any,
            "hookInstance": Any,
            "context": Any,
            "fhirServer": Any,
            "fhirAuthorization": Any,
            "prefetch": prefetch,
        },
        total=False,
    )
    decoder: Callable[[bytes], dict[str, Any]] = msgspec.json.Decoder(envelope).decode
    return decoder


def read_hook_body(raw: bytes, prefetch: Mapping[str, PrefetchQuery]) -> Any:
    """The request body, with its prefetch decoded into the reader's views in the same pass when
    every value is well-formed (the common case). Anything odd (a resource the strict decode
    refuses, an OperationOutcome, a read answered by a Bundle) takes the careful path instead:
    raw slices read one by one, leniently, exactly as if the fast path did not exist."""
    keys = tuple((key, q.resource_type, _is_read(q)) for key, q in prefetch.items())
    decode = _typed_body_decoder(keys) if raw else None
    if decode is not None:
        try:
            body = decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            body = None
        if body is not None and all(
            not isinstance(value, ResourceView) or value.resource_type == prefetch[key].resource_type
            for key, value in body.get("prefetch", {}).items()
        ):
            return body
    return parse_hook_body(raw)


def _typed_page(value: TypedBundle[Any] | ResourceView) -> Page:
    if isinstance(value, ResourceView):
        return Page([value])
    return Page([e.resource for e in value.entry if e.resource is not msgspec.UNSET], _next_link(value.link))


def prefetch_page(value: Any, query: PrefetchQuery) -> Page | None:
    """One prefetch value as a Page; None when it must count as missing (an OperationOutcome)."""
    if isinstance(value, TypedBundle | ResourceView):
        return _typed_page(value)
    if isinstance(value, msgspec.Raw):
        fast = _fast_page(value, query.resource_type)
        if fast is not None:
            return fast
        try:
            value = orjson.loads(memoryview(value))
        except (orjson.JSONDecodeError, RecursionError):
            raise CdsError(
                400, "invalid", f"prefetch value for {query.resource_type} is not valid JSON"
            ) from None
    if value is None:
        return Page([])
    if not isinstance(value, dict):
        raise CdsError(
            400, "invalid", f"prefetch value for {query.resource_type} must be a FHIR resource or null"
        )
    if value.get("resourceType") == "OperationOutcome":
        return None
    try:
        return read_page(value)
    except ValueError:
        raise CdsError(
            400, "invalid", f"prefetch Bundle for {query.resource_type} has a malformed entry list"
        ) from None


def _fetch(
    request: HookRequest, tasks: Mapping[str, FetchTask], fetcher: Fetcher | None, deadline: float
) -> Mapping[str, FetchOutcome]:
    if not tasks:
        return {}
    if fetcher is None or not request.fhir_server:
        return {key: FetchFailed("no-fhir-server") for key in tasks}
    return fetcher.fetch(request, tasks, deadline)


def gather_record(
    request: HookRequest, prefetch: Mapping[str, PrefetchQuery], fetcher: Fetcher | None, deadline: float
) -> RecordData:
    """Prefetch first; missing keys and further pages are fetched; required data missing -> 412."""
    data = RecordData()
    tasks: dict[str, FetchTask] = {}
    for key, query in prefetch.items():
        page = prefetch_page(request.prefetch[key], query) if key in request.prefetch else None
        if page is None:
            tasks[key] = FetchTask(query)
            continue
        kept = keep_resources(page.resources, query)
        data.resources.setdefault(query.resource_type, []).extend(kept)
        if page.next_url is None:
            continue
        if request.fhir_server and request.access_token:
            tasks[key] = FetchTask(query, page.next_url, have=len(kept))
        else:  # the EHR gave one page and no way to read more: use what is there
            data.skipped[f"{query.resource_type} pages-not-followed"] += 1
    outcomes = _fetch(request, tasks, fetcher, deadline)
    for key, task in tasks.items():
        outcome, query = outcomes.get(key, FetchFailed("timeout")), task.query
        if isinstance(outcome, Fetched):
            kept = keep_resources(outcome.resources, query)
            data.resources.setdefault(query.resource_type, []).extend(kept)
        else:
            data.failures[key] = outcome.kind
        record_fhir_fetch(query.resource_type, "ok" if isinstance(outcome, Fetched) else outcome.kind)
    failed_required = sorted(key for key in data.failures if prefetch[key].required)
    if failed_required:
        raise CdsError(
            412,
            "incomplete",
            "required data could not be had: "
            + ", ".join(f"{key} ({data.failures[key]})" for key in failed_required),
        )
    data.unavailable.update(prefetch[key].resource_type for key in data.failures)
    return data
