"""GET /cds-services: the discovery document."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service.outcome import json_response
from cds_service.runtime import runtime

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> Response:
    return json_response({"services": [s.discovery() for s in runtime().services.values()]})
