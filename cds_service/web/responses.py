"""Errors as FHIR OperationOutcome bodies: the one error shape clients see."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response


class CdsError(Exception):
    """An expected failure with its HTTP status; the message never holds tokens or patient data."""

    def __init__(self, status: int, issue_code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issue_code = issue_code
        self.diagnostics = diagnostics


def operation_outcome(issue_code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": issue_code, "diagnostics": diagnostics}],
    }


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def outcome_response(status: int, issue_code: str, diagnostics: str) -> Response:
    return json_response(operation_outcome(issue_code, diagnostics), status)


def outcome_issues_response(status: int, issue_code: str, issues: list[tuple[str, str]]) -> Response:
    """One issue per problem, each with the location (FHIRPath-like `expression`) it concerns."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": issue_code, "diagnostics": f"{where}: {why}" if where else why}
            | ({"expression": [where]} if where else {})
            for where, why in issues
        ],
    }
    return json_response(body, status)
