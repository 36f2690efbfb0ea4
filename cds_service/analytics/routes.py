"""GET /analytics: the report as an HTML page with a chart, for the people who govern the CDS.

Off (404) unless CDS_ANALYTICS_TOKEN is set; then the token is needed as a Bearer token or as the
password of HTTP Basic (so a browser can prompt for it).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import date

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from cds_service.analytics.chart import day_chart
from cds_service.analytics.report import build_report
from cds_service.analytics.text import percent
from cds_service.runtime import runtime
from cds_service.web.html import html_page
from cds_service.web.responses import CdsError

bp = Blueprint("analytics", __name__, template_folder="templates")


def _authorised(secret: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    given = ""
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    return bool(given) and hmac.compare_digest(given.encode(), secret.encode())


@bp.get("/analytics")
def analytics() -> Response:
    rt = runtime()
    token = rt.settings.analytics_token
    if token is None or rt.database is None:
        raise CdsError(404, "not-found", "analytics are not enabled")
    if not _authorised(token.get_secret_value()):
        return Response(status=401, headers={"WWW-Authenticate": 'Basic realm="analytics", charset="UTF-8"'})
    since_text = request.args.get("since")
    try:
        since = date.fromisoformat(since_text) if since_text else None
    except ValueError:
        raise CdsError(400, "invalid", "since must be a date (YYYY-MM-DD)") from None
    try:
        report = build_report(rt.database, since)
    except SQLAlchemyError:
        raise CdsError(503, "transient", "analytics database unavailable") from None
    services = [*report.services, report.total]
    chart = day_chart(report.days)
    return html_page("analytics.html", report=report, services=services, chart=chart, percent=percent)
