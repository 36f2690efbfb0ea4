"""Every error a client can get is a FHIR OperationOutcome: expected failures (CdsError), HTTP
errors raised by Flask or werkzeug, and anything unexpected (logged, answered 500 without detail)."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from cds_service.web.responses import CdsError, outcome_response

log = logging.getLogger("cds_service")

_ISSUE_CODES = {400: "invalid", 404: "not-found", 405: "not-supported", 413: "too-costly", 415: "invalid"}


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(CdsError)
    def cds_error(error: CdsError) -> Response:
        return outcome_response(error.status, error.issue_code, error.diagnostics)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        response = outcome_response(status, _ISSUE_CODES.get(status, "exception"), error.name)
        for name, value in error.get_headers():
            if name.lower() == "allow":
                response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unexpected error while answering", exc_info=error)
        return outcome_response(500, "exception", "internal error")
