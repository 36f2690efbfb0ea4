"""GET /openapi.json: the API description (built once per app)."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service.openapi import openapi_document
from cds_service.outcome import json_response
from cds_service.runtime import runtime

bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi() -> Response:
    rt = runtime()
    return json_response(openapi_document(rt.services, demo=rt.settings.demo))
