"""spine-cds: evaluate FHIR exports offline, print demo requests, play the EHR against a FHIR server,
serve under gunicorn."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from cds_service.offline import hook_request_for, patient_ids, read_scenario, rebase_dates
from cds_service.runtime import utc_today
from cds_service.services import SERVICES, ServiceDefinition
from cds_service.store.database import Database, database_for, head_revision

STRICT_ERRORS_EXIT = 4
"""`evaluate --strict`: the answer was printed, and the input has FHIR errors."""


def _pick_patient(resources: list[dict[str, object]], wanted: str | None) -> str:
    ids = patient_ids(resources)
    if wanted:
        return wanted
    if len(ids) != 1:
        raise SystemExit(f"spine-cds: found {len(ids)} Patient resources; name one with --patient")
    return ids[0]


def _service(wanted: str | None, hook: str) -> ServiceDefinition:
    """The named service, else the one for the scenario's hook."""
    if wanted:
        return SERVICES[wanted]
    return next(s for s in SERVICES.values() if s.hook == hook)


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.app import create_app

    scenario = read_scenario(Path(args.path))
    as_of: date = args.as_of or scenario.as_of or utc_today()
    service = _service(args.service, scenario.hook)
    patient = _pick_patient(scenario.resources, args.patient)
    body = hook_request_for(scenario.resources, service, patient, context=scenario.context)
    # Offline: nothing is shown to a clinician, so nothing is recorded (in-memory database, auth off).
    offline: dict[str, Any] = {"database_url": "sqlite://", "record_cards": False, "auth": "off"}
    if args.recent_days:
        offline["recent_days"] = args.recent_days
    app = create_app(clock=lambda: as_of, **offline)
    response = app.test_client().post(f"/cds-services/{service.id}", json=body)
    sys.stdout.write(orjson.dumps(response.get_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    if response.status_code != 200:
        return 1
    if args.strict:
        from cds_service.strict import fhir_errors

        errors = fhir_errors(scenario.resources)
        for line in errors:
            sys.stderr.write(f"spine-cds: FHIR error: {line}\n")
        sys.stderr.write(
            f"spine-cds: strict: {len(errors)} FHIR error(s) in {len(scenario.resources)} resources "
            "(the decision above does not depend on them)\n"
        )
        return STRICT_ERRORS_EXIT if errors else 0
    return 0


def _request(args: argparse.Namespace) -> int:
    scenario = read_scenario(Path(args.path))
    resources = scenario.resources
    shift = (utc_today() - scenario.as_of).days if scenario.as_of and not args.keep_dates else 0
    if shift:
        resources = rebase_dates(resources, shift)
    service = _service(args.service, scenario.hook)
    context = rebase_dates(scenario.context, shift) if shift else scenario.context
    body = hook_request_for(resources, service, _pick_patient(resources, args.patient), context=context)
    sys.stdout.write(orjson.dumps(body).decode() + "\n")
    return 0


def _is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _try(args: argparse.Namespace) -> int:
    """Play the EHR: a hook call with no prefetch, so the service reads everything from the server."""
    service = SERVICES[args.service]
    body: dict[str, Any] = {
        "hook": service.hook,
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": args.fhir_server,
        "context": {"userId": args.user, "patientId": args.patient},
    }
    if args.token:
        body["fhirAuthorization"] = {
            "access_token": args.token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": " ".join(sorted({f"user/{q.resource_type}.read" for q in service.prefetch.values()})),
            "subject": "spine-cds-try",
        }
    started = time.perf_counter()
    if args.service_url:
        if args.as_of:
            raise SystemExit("spine-cds: --as-of applies in-process only, not with --service-url")
        url = f"{args.service_url.rstrip('/')}/cds-services/{service.id}"
        response = requests.post(url, json=body, timeout=60)
        status = response.status_code
        try:
            answer = response.json()
        except ValueError:  # e.g. the empty body of a 401
            answer = None
    else:
        from cds_service.app import create_app

        as_of: date = args.as_of or utc_today()
        # In-process the CLI is the EHR itself: no JWT to check, nothing shown to record.
        app = create_app(
            clock=lambda: as_of,
            allow_http_fhir=_is_loopback_http(args.fhir_server),
            auth="off",
            database_url="sqlite://",
            record_cards=False,
        )
        reply = app.test_client().post(f"/cds-services/{service.id}", json=body)
        status, answer = reply.status_code, reply.get_json()
    elapsed_ms = (time.perf_counter() - started) * 1000
    sys.stdout.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() + "\n")
    cards = len(answer.get("cards", [])) if isinstance(answer, dict) else 0
    sys.stderr.write(f"HTTP {status}, {cards} card(s), total {elapsed_ms:.1f} ms\n")
    return 0 if status == 200 else 1


def _serve(args: argparse.Namespace) -> int:
    if args.demo:
        os.environ["CDS_DEMO"] = "true"
    if args.bind:
        os.environ["CDS_BIND"] = args.bind
    argv = ["gunicorn", "--config", "python:cds_service.gunicorn_config", "cds_service.app:create_app()"]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # pragma: no cover


def _database(args: argparse.Namespace) -> Database:
    from cds_service.settings import Settings

    return database_for(args.database_url or Settings().database_url)


def _report(args: argparse.Namespace) -> int:
    from cds_service.report_text import render_text
    from cds_service.store.report import build_report

    database = _database(args)
    if not database.ensure_schema():
        raise SystemExit("spine-cds: the database is unavailable")
    sys.stdout.write(render_text(build_report(database, args.since)))
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    database = _database(args)
    database.upgrade()
    sys.stdout.write(f"database at revision {head_revision()} ({database.backend})\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spine-cds", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    service_ids = sorted(SERVICES)

    evaluate = sub.add_parser(
        "evaluate", help="print the CDS Hooks response for a FHIR Bundle, NDJSON or fixture"
    )
    evaluate.add_argument("path")
    evaluate.add_argument(
        "--as-of", type=date.fromisoformat, help="evaluation date (default: fixture asOf, else today)"
    )
    evaluate.add_argument("--patient", help="patient id when the file holds several")
    evaluate.add_argument(
        "--service", choices=service_ids, help="default: the fixture's hook, else patient-view"
    )
    evaluate.add_argument("--recent-days", type=int, help="override CDS_RECENT_DAYS")
    evaluate.add_argument(
        "--strict",
        action="store_true",
        help=f"also validate every resource as FHIR R4, list the errors (exit {STRICT_ERRORS_EXIT} if any)",
    )
    evaluate.set_defaults(run=_evaluate)

    request = sub.add_parser(
        "request", help="print a CDS Hooks request for a fixture, dates rebased to today"
    )
    request.add_argument("path")
    request.add_argument("--patient")
    request.add_argument(
        "--service", choices=service_ids, help="default: the fixture's hook, else patient-view"
    )
    request.add_argument("--keep-dates", action="store_true", help="do not rebase fixture dates")
    request.set_defaults(run=_request)

    try_ = sub.add_parser(
        "try", help="play the EHR: call the service with no prefetch against a FHIR server, print cards"
    )
    try_.add_argument("--fhir-server", required=True, help="FHIR base URL, e.g. https://host/fhir/R4")
    try_.add_argument("--patient", required=True, help="patient id on that server")
    try_.add_argument("--token", help="access token the service sends to the FHIR server")
    try_.add_argument("--user", default="Practitioner/example", help="context.userId")
    try_.add_argument("--service", choices=service_ids, default="vertebral-augmentation-referral")
    try_.add_argument("--service-url", help="base URL of a running service (default: in-process)")
    try_.add_argument("--as-of", type=date.fromisoformat, help="evaluation date in-process (default today)")
    try_.set_defaults(run=_try)

    serve = sub.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--bind", help="host:port (default CDS_BIND or 127.0.0.1:8080)")
    serve.add_argument("--demo", action="store_true", help="turn demo conveniences on")
    serve.set_defaults(run=_serve)

    report = sub.add_parser("report", help="acceptance and override rates, override reasons, cards per day")
    report.add_argument("--since", type=date.fromisoformat, help="only cards and feedback from this date on")
    report.add_argument("--database-url", help="default: CDS_DATABASE_URL")
    report.set_defaults(run=_report)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply pending migrations (the app also does at start)")
    upgrade.add_argument("--database-url", help="default: CDS_DATABASE_URL")
    upgrade.set_defaults(run=_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
