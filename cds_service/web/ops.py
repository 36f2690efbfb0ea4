"""Operations: /healthz (the process answers), /readyz (ready for traffic), /metrics (Prometheus),
and the per-request timing behind the request metrics. None of these needs client authentication."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, g, request

from cds_service.runtime import runtime
from cds_service.web.metrics import UNKNOWN, exposition, observe_request
from cds_service.web.readiness import optional_checks, readiness_checks, run_checks
from cds_service.web.responses import json_response

bp = Blueprint("ops", __name__)


@bp.before_app_request
def _start_timer() -> None:
    g.cds_started = time.perf_counter()


@bp.after_app_request
def _observe(response: Response) -> Response:
    started = g.get("cds_started")
    if started is not None:
        service_id = (request.view_args or {}).get("service_id")
        service = "" if service_id is None else str(service_id)
        if service and service not in runtime().services:
            service = UNKNOWN  # any path segment could be sent: keep the label set bounded
        observe_request(
            request.endpoint or "unmatched", service, response.status_code, time.perf_counter() - started
        )
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: the worker answers. Says nothing about dependencies (that is /readyz)."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    checks = run_checks(readiness_checks(current_app), optional_checks(current_app))
    ready = all(c["ok"] for c in checks if c["required"])
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)
