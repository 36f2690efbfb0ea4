"""What the app builds once at start and every request shares (never reloaded per request)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from flask import current_app

from cds_service.core.card_builder import CardContent
from cds_service.core.terminology import Terminology
from cds_service.prefetch import Fetcher
from cds_service.services import ServiceDefinition
from cds_service.settings import Settings
from cds_service.store.card_log import CardRecorder
from cds_service.store.database import Database


def utc_today() -> date:
    """Evaluation day: the server clock in UTC (clinical-rules §1)."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    terminology: Terminology
    content: CardContent
    services: Mapping[str, ServiceDefinition]
    rationale_html: str
    clock: Callable[[], date] = utc_today
    fetcher: Fetcher | None = None
    database: Database | None = None
    recorder: CardRecorder | None = None


def runtime() -> Runtime:
    found = current_app.extensions["cds"]
    assert isinstance(found, Runtime)
    return found
