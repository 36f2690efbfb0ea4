"""POST /cds-services/{id}/feedback: CDS Hooks 2.0.1 feedback, validated and stored durably."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from cds_service.feedback_request import InvalidFeedbackError, parse_feedback
from cds_service.hook_request import check_content_type, parse_json_body, request_body
from cds_service.metrics import record_feedback
from cds_service.outcome import CdsError, json_response, outcome_issues_response
from cds_service.runtime import runtime
from cds_service.store.card_log import utc_now
from cds_service.store.feedback_store import StorageUnavailableError, save_feedback

bp = Blueprint("feedback", __name__)
log = logging.getLogger("cds_service.feedback")


@bp.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str) -> Response:
    rt = runtime()
    if service_id not in rt.services:
        raise CdsError(404, "not-found", "unknown CDS service")
    check_content_type(request.mimetype)
    try:
        entries = parse_feedback(parse_json_body(request_body()))
    except InvalidFeedbackError as invalid:
        log.info("feedback refused", extra={"service": service_id, "issues": len(invalid.issues)})
        return outcome_issues_response(400, "invalid", invalid.issues)
    if rt.database is None:
        raise CdsError(503, "transient", "feedback storage is not configured")
    try:
        new = save_feedback(rt.database, service_id, entries, utc_now())
    except StorageUnavailableError as error:
        log.error(
            "feedback not stored: database unavailable", extra={"service": service_id, "error": str(error)}
        )
        response = outcome_issues_response(
            503, "transient", [("", "feedback storage unavailable; retry later")]
        )
        response.headers["Retry-After"] = "5"
        return response
    for entry in entries:
        record_feedback(service_id, entry.outcome)
    log.info("feedback stored", extra={"service": service_id, "entries": len(entries), "new": new})
    return json_response({"received": len(entries), "new": new})
