"""GET /analytics: the report as an HTML page with a chart, for the people who govern the CDS.

Off (404) unless CDS_ANALYTICS_TOKEN is set; then the token is needed as a Bearer token or as the
password of HTTP Basic (so a browser can prompt for it).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import date

import jinja2
from flask import Blueprint, Response, request
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from cds_service.outcome import CdsError
from cds_service.report_text import percent
from cds_service.runtime import runtime
from cds_service.store.report import build_report
from cds_service.svg_chart import day_chart

bp = Blueprint("analytics", __name__)

_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vertebral augmentation CDS: analytics</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}
table{border-collapse:collapse;margin:.5rem 0 1.5rem} td,th{border:1px solid #ccc;padding:.25rem .5rem}
td.n{text-align:right}
</style></head><body>
<h1>Cards and feedback</h1>
<p>{{ "Since " ~ report.since.isoformat() if report.since else "All time" }}.
Rates are shares of the feedback received (accepted + overridden).</p>
<h2>Over time</h2>
{{ chart }}
{% for title, rows in [("By service", services), ("By recommendation", report.recommendations)] %}
<h2>{{ title }}</h2>
<table><tr><th></th><th>cards</th><th>feedback</th><th>accepted</th><th>overridden</th>
<th>acceptance rate</th><th>override rate</th></tr>
{% for r in rows %}<tr><th scope="row">{{ r.key }}</th><td class="n">{{ r.cards }}</td>
<td class="n">{{ r.feedback }}</td><td class="n">{{ r.accepted }}</td><td class="n">{{ r.overridden }}</td>
<td class="n">{{ percent(r.acceptance_rate) }}</td><td class="n">{{ percent(r.override_rate) }}</td></tr>
{% endfor %}</table>
{% endfor %}
<h2>Override reasons</h2>
<table><tr><th>count</th><th>code</th><th>display</th></tr>
{% for r in report.reasons %}
<tr><td class="n">{{ r.count }}</td><td>{{ r.code }}</td><td>{{ r.display }}</td></tr>
{% else %}<tr><td colspan="3">none yet</td></tr>{% endfor %}</table>
</body></html>"""
)


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
    html = _TEMPLATE.render(
        report=report, services=services, chart=Markup(day_chart(report.days)), percent=percent
    )
    return Response(html, mimetype="text/html")
