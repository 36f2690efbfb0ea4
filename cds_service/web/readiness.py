"""Readiness: named checks `/readyz` runs; the service takes traffic only when every required one
passes, i.e. when hook calls can be answered (value sets, card content). A check added as not
required (the database, unless the configuration makes it required) is reported with its outcome
but does not take the instance out of service: hook calls go on answering while it is away.

Other parts of the shell add their own check with `add_readiness_check` (e.g. a database ping), so
the endpoint never has to know what it is checking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from cds_service.runtime import runtime

_EXTENSION = "cds_readiness"
_OPTIONAL = "cds_readiness_optional"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


ReadinessCheck = Callable[[], CheckResult]
"""Runs inside the app context of a /readyz request; must be quick and never raise on purpose."""


def valuesets_loaded() -> CheckResult:
    terminology = runtime().terminology
    count = len(terminology.valuesets)
    if count == 0:
        return CheckResult(False, "no value sets loaded")
    return CheckResult(True, f"{count} value sets")


def card_content_loaded() -> CheckResult:
    rt = runtime()
    content = rt.content
    missing = [key for key in ("summary", "suggestion", "notes", "order") if key not in content.texts]
    if missing or not rt.rationale_body.strip():
        return CheckResult(False, "card texts incomplete: " + ", ".join(missing or ["rationale"]))
    return CheckResult(True, f"{len(content.texts)} text groups, templates compiled")


def readiness_checks(app: Flask) -> dict[str, ReadinessCheck]:
    """The app's checks by name, starting with the ones every deployment needs."""
    checks: dict[str, ReadinessCheck] = app.extensions.setdefault(
        _EXTENSION, {"valuesets": valuesets_loaded, "card-content": card_content_loaded}
    )
    return checks


def add_readiness_check(app: Flask, name: str, check: ReadinessCheck, *, required: bool = True) -> None:
    readiness_checks(app)[name] = check
    optional: set[str] = app.extensions.setdefault(_OPTIONAL, set())
    if required:
        optional.discard(name)
    else:
        optional.add(name)


def optional_checks(app: Flask) -> frozenset[str]:
    """Names of the checks reported but not needed for readiness."""
    return frozenset(app.extensions.get(_OPTIONAL, ()))


def run_checks(
    checks: dict[str, ReadinessCheck], optional: frozenset[str] = frozenset()
) -> list[dict[str, object]]:
    """Every check's outcome; an exception counts as not ready, named by its type only (a message
    could carry a connection string)."""
    results: list[dict[str, object]] = []
    for name, check in checks.items():
        try:
            result = check()
        except Exception as error:
            result = CheckResult(False, f"check failed: {type(error).__name__}")
        results.append(
            {"name": name, "ok": result.ok, "detail": result.detail, "required": name not in optional}
        )
    return results
