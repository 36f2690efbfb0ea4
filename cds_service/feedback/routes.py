"""POST /cds-services/{id}/feedback: CDS Hooks 2.0.1 feedback, validated and stored durably."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Blueprint, Response
from sqlalchemy.exc import SQLAlchemyError

from cds_service.clock import utc_now
from cds_service.feedback.request import InvalidFeedbackError, parse_feedback, unbound_issues
from cds_service.feedback.store import StorageUnavailableError, save_feedback
from cds_service.runtime import Runtime, runtime
from cds_service.store.card_log import IssuedCard, recorded_cards
from cds_service.web.body import parse_json_body, request_body
from cds_service.web.metrics import record_feedback
from cds_service.web.responses import CdsError, json_response, outcome_issues_response

bp = Blueprint("feedback", __name__)
log = logging.getLogger("cds_service.feedback")


@bp.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str) -> Response:
    rt = runtime()
    if service_id not in rt.services:
        raise CdsError(404, "not-found", "unknown CDS service")
    try:
        entries = parse_feedback(parse_json_body(request_body()))
    except InvalidFeedbackError as invalid:
        log.info("feedback refused", extra={"service": service_id, "issues": len(invalid.issues)})
        return outcome_issues_response(400, "invalid", invalid.issues)
    if rt.database is None:
        raise CdsError(503, "transient", "feedback storage is not configured")
    try:
        issued = _issued_cards(rt, {entry.card for entry in entries})
        unbound = unbound_issues(entries, service_id, issued)
        if unbound:
            log.info("feedback refused", extra={"service": service_id, "issues": len(unbound)})
            return outcome_issues_response(400, "invalid", unbound)
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


_WAIT_FOR_CARD_SECONDS = 1.0
"""How long feedback for a card not found yet waits for its row: the card may have been issued a
moment ago by another worker whose writer has not inserted it yet (this worker's own queue is
checked directly). Only feedback naming an unknown card ever waits."""


def _issued_cards(rt: Runtime, card_uuids: set[str]) -> dict[str, IssuedCard]:
    """The issued cards feedback names: queued in this process or recorded in the database."""
    assert rt.database is not None
    if not rt.database.ensure_schema():
        raise StorageUnavailableError("database schema unavailable")
    card_uuids = {u for u in card_uuids if _is_uuid(u)}  # every card of ours has a UUID: others are unknown
    found: dict[str, IssuedCard] = {}
    if rt.recorder is not None:
        found = {u: c for u in card_uuids if (c := rt.recorder.pending(u)) is not None}
    deadline = time.monotonic() + _WAIT_FOR_CARD_SECONDS
    while True:
        missing = card_uuids - found.keys()
        if not missing:
            return found
        try:
            found.update(recorded_cards(rt.database, missing))
        except SQLAlchemyError as error:
            raise StorageUnavailableError(type(error).__name__) from error
        if card_uuids <= found.keys() or time.monotonic() > deadline or rt.recorder is None:
            return found
        time.sleep(0.05)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
