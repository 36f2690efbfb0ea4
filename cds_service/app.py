"""The app factory: WSGI servers, tests, benchmarks and the CLI all build the app here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

from flask import Flask
from flask_cors import CORS

from cds_service.analytics import routes as analytics_routes
from cds_service.auth.guard import install_auth
from cds_service.clock import utc_today
from cds_service.config.checks import check_database_url, load_settings, site_terminology
from cds_service.config.settings import Settings
from cds_service.core.card_builder import load_card_content
from cds_service.core.terminology import Terminology
from cds_service.demo import preview
from cds_service.feedback import routes as feedback_routes
from cds_service.hooks import routes as hooks_routes
from cds_service.hooks.catalogue import SERVICES
from cds_service.hooks.fhir_client import FetchLimits, FhirFetcher
from cds_service.runtime import Runtime
from cds_service.store.card_log import recorder_for
from cds_service.store.database import database_for
from cds_service.web import openapi, ops, rationale
from cds_service.web.errors import install_error_handlers
from cds_service.web.logs import configure_logging
from cds_service.web.metrics import record_database_health
from cds_service.web.rationale import rationale_body
from cds_service.web.readiness import CheckResult, add_readiness_check
from cds_service.web.security_headers import install_security_headers

log = logging.getLogger("cds_service")


def _site_valuesets_check(terminology: Terminology) -> CheckResult:
    files = [f"{s.file} -> {s.valueset_id} ({'; '.join(s.sources)})" for s in terminology.site_files]
    return CheckResult(True, ", ".join(files))


def fetch_threads(settings: Settings) -> int:
    """Enough fetch threads that every request thread can fetch every key of a call at once: honest
    concurrent calls never queue behind each other (abandoned fetches end at their deadline)."""
    if settings.fhir_workers is not None:
        return settings.fhir_workers
    return settings.threads * max(len(service.prefetch) for service in SERVICES.values())


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], date] | None = None, **overrides: Any
) -> Flask:
    """Build the app; `overrides` replace settings fields (tests, CLI), `clock` fixes 'today'."""
    base = load_settings(overrides, settings)
    check_database_url(base.database_url)
    terminology = site_terminology(base)
    content = load_card_content()
    database = database_for(base.database_url)
    database.ensure_schema()  # migrations run at start; a database that is away is retried later
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = base.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["cds"] = Runtime(
        settings=base,
        terminology=terminology,
        content=content,
        services=SERVICES,
        rationale_body=rationale_body(base, terminology),
        clock=clock or utc_today,
        # One pool per app, shared by every hook call. Its threads start on first use, so a
        # preloaded app (gunicorn preload_app) forks none: each worker process starts its own.
        fetcher=FhirFetcher(
            FetchLimits.from_settings(base),
            ThreadPoolExecutor(max_workers=fetch_threads(base), thread_name_prefix="cds-fhir"),
        ),
        database=database,
        recorder=recorder_for(database) if base.record_cards else None,
    )
    configure_logging(base.log_level)
    # urllib3's debug lines hold FHIR request URLs, i.e. patient ids: never below WARNING.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    for blueprint in (
        hooks_routes.bp,
        rationale.bp,
        ops.bp,
        feedback_routes.bp,
        analytics_routes.bp,
        openapi.bp,
    ):
        app.register_blueprint(blueprint)
    if base.demo:
        preview.register(app, base.fixtures_dir)
    install_auth(app, base, database)

    def database_health() -> CheckResult:
        up = database.ping()
        record_database_health(database.backend, up)
        return (
            CheckResult(True, database.backend)
            if up
            else CheckResult(False, f"{database.backend} unreachable")
        )

    # Hooks answer without the database (replay checks fall back to memory, card recording is
    # queued): it takes the instance out of service only when the configuration says so.
    add_readiness_check(app, "database", database_health, required=base.ready_requires_database)
    if terminology.site_files:
        add_readiness_check(app, "site-valuesets", lambda: _site_valuesets_check(terminology))
    install_security_headers(app, hsts=(base.public_base_url or "").startswith("https://"))
    if base.allowed_origins():
        CORS(
            app,
            resources={r"/cds-services*": {"origins": base.allowed_origins()}},
            allow_headers=["Authorization", "Content-Type"],
            methods=["GET", "POST", "OPTIONS"],
            max_age=600,
        )
    install_error_handlers(app)
    return app
