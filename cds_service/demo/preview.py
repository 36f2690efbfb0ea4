"""The preview page at / (demo mode only): a clinician or integrator sees the cards an EHR would show.

The page's JavaScript asks this blueprint for a fixture patient's request, sends it to the real hook
endpoint, and asks for the card details rendered as HTML (server-side, raw HTML disabled).
Nothing is loaded from anywhere but this service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from cds_service.demo.patients import (
    DemoPatient,
    demo_request,
    list_patients,
    packaged_fixtures,
    sample_draft_order,
)
from cds_service.hooks.catalogue import REFERRAL
from cds_service.runtime import runtime
from cds_service.web.body import parse_json_body, request_body
from cds_service.web.html import html_page, render_markdown
from cds_service.web.responses import CdsError, json_response
from cds_service.web.security_headers import SCRIPTED_PAGE_CSP
from cds_service.web.urls import base_url

bp = Blueprint(
    "preview",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/preview/static",
)
_EXTENSION = "cds_preview"
MAX_DETAILS = 20


@dataclass(frozen=True)
class PreviewData:
    root: Path
    patients: list[DemoPatient]
    sample_order: dict[str, Any]


def register(app: Flask, fixtures_dir: Path | None) -> None:
    """Read the patient list once and mount the page; only called when the demo is on."""
    root = fixtures_dir or packaged_fixtures()
    app.extensions[_EXTENSION] = PreviewData(root, list_patients(root), sample_draft_order())
    app.register_blueprint(bp)


def _data() -> PreviewData:
    found = current_app.extensions[_EXTENSION]
    assert isinstance(found, PreviewData)
    return found


@bp.get("/")
def page() -> Response:
    rt = runtime()
    today = rt.clock()
    # One service per hook, in the order an encounter meets them: chart opened, order chosen, signed.
    by_hook = {s.hook: s for s in reversed(list(rt.services.values()))}
    hooks = [by_hook[h] for h in ("patient-view", "order-select", "order-sign") if h in by_hook]
    response = html_page(
        "preview.html",
        patients=[(p, p.description_on(today), p.banner_on(today)) for p in _data().patients],
        referral=REFERRAL,
        hooks=hooks,
        hook_services={s.hook: s.id for s in hooks},
        discovery_url=base_url(rt.settings) + "/cds-services",
        today=today.isoformat(),
    )
    response.headers["Content-Security-Policy"] = SCRIPTED_PAGE_CSP  # the one page that runs a script
    return response


@bp.get("/preview/requests/<name>")
def hook_request(name: str) -> Response:
    """The request the EHR would send for this patient today (the page posts it to the service)."""
    data = _data()
    if name not in {p.name for p in data.patients}:
        raise CdsError(404, "not-found", "unknown demo patient")
    rt = runtime()
    service = rt.services.get(request.args.get("service", REFERRAL.id))
    if service is None:
        raise CdsError(404, "not-found", "unknown CDS service")
    try:
        body = demo_request(data.root, name, service, rt.clock(), data.sample_order)
    except (OSError, ValueError) as error:  # a hand-made CDS_FIXTURES_DIR scenario may be broken
        raise CdsError(422, "processing", f"demo patient {name} could not be read: {error}") from None
    return json_response(body)


@bp.post("/preview/markdown")
def markdown() -> Response:
    """Card details as HTML: {"markdown": [text, ...]} -> {"html": [html, ...]}."""
    body = parse_json_body(request_body())
    texts = body.get("markdown") if isinstance(body, dict) else None
    if not isinstance(texts, list) or len(texts) > MAX_DETAILS or not all(isinstance(t, str) for t in texts):
        raise CdsError(
            400, "invalid", f'expected {{"markdown": [text, ...]}} with at most {MAX_DETAILS} texts'
        )
    return json_response({"html": [render_markdown(t) for t in texts]})
