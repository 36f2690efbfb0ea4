"""What the app builds once at start and every request shares (never reloaded per request)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from flask import current_app
from markupsafe import Markup

from cds_service.clock import utc_today
from cds_service.config.settings import Settings
from cds_service.core.card_builder import CardContent
from cds_service.core.terminology import Terminology
from cds_service.hooks.catalogue import ServiceDefinition
from cds_service.hooks.prefetch import Fetcher
from cds_service.store.card_log import CardRecorder
from cds_service.store.database import Database


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    terminology: Terminology
    content: CardContent
    services: Mapping[str, ServiceDefinition]
    rationale_body: Markup
    """/rationale's document as HTML, rendered once at start."""
    clock: Callable[[], date] = utc_today
    fetcher: Fetcher | None = None
    database: Database | None = None
    recorder: CardRecorder | None = None


def runtime() -> Runtime:
    found = current_app.extensions["cds"]
    assert isinstance(found, Runtime)
    return found
