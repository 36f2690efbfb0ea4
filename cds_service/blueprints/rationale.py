"""GET /rationale: the page every card's source.url points to (rendered once at start)."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service.runtime import runtime

bp = Blueprint("rationale", __name__)


@bp.get("/rationale")
def rationale() -> Response:
    return Response(runtime().rationale_html, mimetype="text/html")
