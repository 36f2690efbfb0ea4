"""Prometheus metrics: what operations watch, recorded with a few cheap calls on the hot path.

Under gunicorn each worker is its own process. `cds_service/serving/gunicorn_config.py` sets
`PROMETHEUS_MULTIPROC_DIR` before the app (and so prometheus_client) is imported: every process then
writes its samples to files there and `/metrics` adds them up across workers, whichever one answers.
Without that variable (tests, `spine-cds evaluate`) samples live in this process only.

Labels are bounded sets (service ids, endpoint names, status codes, recommendations, resource types):
never a patient, user or hookInstance.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "unknown"


# Seconds; hook calls are meant to take milliseconds, so the buckets are fine at the low end.
_LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Histogram(
    "cds_request_duration_seconds",
    "Requests answered and their latency, by endpoint, CDS service (hook and feedback calls) and status."
    " The _count series is the number of requests.",
    ["endpoint", "service", "status"],
    buckets=_LATENCY_BUCKETS,
)
CARDS = Counter(
    "cds_cards_total", "Cards returned, by CDS service and recommendation.", ["service", "recommendation"]
)
FHIR_FETCHES = Counter(
    "cds_fhir_fetches_total",
    "Reads from the EHR's fhirServer for missing prefetch, by resource type and outcome.",
    ["resource_type", "outcome"],
)
FEEDBACK = Counter(
    "cds_feedback_total", "Feedback entries received, by CDS service and outcome.", ["service", "outcome"]
)
DATABASE_OUTAGES = Counter(
    "cds_database_outages_total",
    "Times a part of the service found the database away (once per outage and process), by component.",
    ["component"],
)
REPLAY_CHECKS = Counter(
    "cds_replay_checks_total",
    "JWT id replay checks, by where they were decided: database, or process memory during an outage.",
    ["store"],
)
REPLAY_MEMORY = Gauge(
    "cds_replay_memory_entries",
    "JWT ids held in process memory while the database is away (0 once it is back).",
    ["component"],  # labelled: its sample files are made on first use, in the workers
    multiprocess_mode="livesum",
)
DATABASE_UP = Gauge(
    "cds_database_up",
    "1 when the last database health check (/readyz) reached the database, else 0.",
    ["backend"],
    multiprocess_mode="mostrecent",
)


def observe_request(endpoint: str, service: str, status: int, seconds: float) -> None:
    REQUESTS.labels(endpoint, service, str(status)).observe(seconds)


def record_card(service: str, recommendation: str | None) -> None:
    CARDS.labels(service, recommendation or UNKNOWN).inc()


def record_fhir_fetch(resource_type: str, outcome: str) -> None:
    """Once per prefetch key that had to be fetched: "ok" or the failure kind (prefetch.FailureKind)."""
    FHIR_FETCHES.labels(resource_type, outcome).inc()


def record_feedback(service: str, outcome: str) -> None:
    """For the feedback endpoint: call once per feedback entry accepted for storage."""
    FEEDBACK.labels(service, outcome).inc()


def record_database_outage(component: str) -> None:
    DATABASE_OUTAGES.labels(component).inc()


def record_replay_check(store: str) -> None:
    REPLAY_CHECKS.labels(store).inc()


def record_replay_memory(entries: int) -> None:
    REPLAY_MEMORY.labels("replay").set(entries)


def record_database_health(backend: str, up: bool) -> None:
    DATABASE_UP.labels(backend).set(1 if up else 0)


def exposition() -> tuple[bytes, str]:
    """The text format body and its content type: all workers' samples when in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
