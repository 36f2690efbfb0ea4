"""spine-cds: evaluate FHIR exports offline, print demo requests, play the EHR against a FHIR server,
serve under gunicorn.

Errors are one line on stderr ("spine-cds: ..."), never a traceback, with an exit code per kind:
0 done (the service answered 200), 1 the service answered with an error status, 2 wrong usage,
3 input file unreadable, 4 patient not found, 5 a server could not be reached, 6 configuration
error, 7 database unavailable.
"""

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
from sqlalchemy.exc import SQLAlchemyError

from cds_service.clock import utc_today
from cds_service.config.checks import ConfigurationError, load_settings, preflight, safe_database_url
from cds_service.core.record.fhir_json import patient_named
from cds_service.demo.scenario import Scenario, hook_request_for, patient_ids, read_scenario, rebase_dates
from cds_service.hooks.catalogue import SERVICES, ServiceDefinition
from cds_service.store.database import Database, database_for, head_revision

EXIT_SERVICE_ERROR = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_PATIENT = 4
EXIT_UNREACHABLE = 5
EXIT_CONFIGURATION = 6
EXIT_DATABASE = 7
STRICT_ERRORS_EXIT = 8
"""`evaluate --strict`: the answer was printed, and the input has FHIR errors."""


class CliError(Exception):
    """A failure the user can fix: printed as one line, exit code by kind."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


def _read(path: Path) -> Scenario:
    """The input, or one line saying what is wrong with it."""
    if not path.exists():
        raise CliError(EXIT_INPUT, f"{path}: no such file or folder")
    if path.is_dir() and not (path / "bundle.json").is_file():
        raise CliError(EXIT_INPUT, f"{path}: a folder needs a bundle.json (and optionally a scenario.json)")
    try:
        return read_scenario(path)
    except orjson.JSONDecodeError as error:
        raise CliError(EXIT_INPUT, f"{path}: not JSON ({error})") from None
    except OSError as error:
        raise CliError(EXIT_INPUT, f"{path}: cannot read ({error.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CliError(
            EXIT_INPUT, f"{path}: expected a FHIR Bundle, a resource, NDJSON or a fixture folder"
        ) from None


def _referenced(resources: list[dict[str, Any]], patient: str) -> bool:
    """Some resource's subject or patient names this patient (the same reading as the service's)."""
    return any(
        isinstance(ref, dict) and patient_named(ref.get("reference")) == patient
        for resource in resources
        for ref in (resource.get("subject"), resource.get("patient"))
    )


def _pick_patient(resources: list[dict[str, Any]], wanted: str | None) -> str:
    ids = patient_ids(resources)
    if wanted:
        if wanted not in ids and not _referenced(resources, wanted):
            raise CliError(
                EXIT_PATIENT,
                f"the patient named with --patient is not in the input ({len(ids)} Patient resources)",
            )
        return wanted
    if len(ids) != 1:
        raise CliError(EXIT_PATIENT, f"found {len(ids)} Patient resources; name one with --patient")
    return ids[0]


def _service(wanted: str | None, hook: str) -> ServiceDefinition:
    """The named service, else the one for the scenario's hook."""
    if wanted:
        return SERVICES[wanted]
    return next(s for s in SERVICES.values() if s.hook == hook)


EXPLAIN_EXTENSION = "vertebral-augmentation-cds/explain"
"""The response extension a demo-mode service adds on `?explain=true` (cds_service/blueprints/hooks.py)."""


def _print_explanation(answer: object, service_url: str | None = None) -> None:
    """The trace on stderr (stdout stays the service's JSON answer), with the extension taken out of
    the answer so stdout is what the EHR would get."""
    extension = answer.get("extension") if isinstance(answer, dict) else None
    trace = extension.pop(EXPLAIN_EXTENSION, None) if isinstance(extension, dict) else None
    if isinstance(answer, dict) and extension == {}:
        del answer["extension"]
    if not isinstance(trace, dict) or not isinstance(trace.get("lines"), list):
        where = f"the service at {service_url}" if service_url else "the service"
        sys.stderr.write(
            f"spine-cds: no explanation: {where} gives one in demo mode only "
            "(`spine-cds serve --demo`, `make run`, `make sandbox`)\n"
        )
        return
    sys.stderr.write("explain (per resource read, then the decision):\n")
    for line in trace["lines"]:
        sys.stderr.write(f"  {line}\n")


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.app import create_app

    scenario = _read(Path(args.path))
    as_of: date = args.as_of or scenario.as_of or utc_today()
    service = _service(args.service, scenario.hook)
    patient = _pick_patient(scenario.resources, args.patient)
    body = hook_request_for(scenario.resources, service, patient, context=scenario.context)
    # Offline: nothing is shown to a clinician, so nothing is recorded (in-memory database, auth off).
    # Its per-call log line is for operators of a service, not for a terminal: warnings only.
    offline: dict[str, Any] = {
        "database_url": "sqlite://",
        "record_cards": False,
        "auth": "off",
        "log_level": "WARNING",
    }
    if args.recent_days:
        offline["recent_days"] = args.recent_days
    if args.explain:
        offline["demo"] = True  # the trace is a demo-mode answer; here the terminal is the only reader
    app = create_app(clock=lambda: as_of, **offline)
    query = "?explain=true" if args.explain else ""
    response = app.test_client().post(f"/cds-services/{service.id}{query}", json=body)
    answer = response.get_json()
    if args.explain and response.status_code == 200:
        _print_explanation(answer)
    sys.stdout.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() + "\n")
    if response.status_code != 200:
        return EXIT_SERVICE_ERROR
    if args.strict:
        from cds_service.cli.strict import fhir_errors

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
    scenario = _read(Path(args.path))
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


def _check_patient_on_server(fhir_server: str, patient: str, token: str | None) -> None:
    """An EHR only calls for a patient it has: a 404 here would otherwise read as "no cards"."""
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    session = requests.Session()
    session.trust_env = False  # no proxy or netrc credentials, as the service itself
    try:
        reply = session.get(f"{fhir_server.rstrip('/')}/Patient/{patient}", headers=headers, timeout=15)
    except requests.RequestException as error:
        raise CliError(
            EXIT_UNREACHABLE, f"cannot reach the FHIR server {fhir_server} ({type(error).__name__})"
        ) from None
    if reply.status_code in (404, 410):
        raise CliError(
            EXIT_PATIENT,
            f"the FHIR server has no Patient with the id given by --patient (HTTP {reply.status_code})",
        )


def _hint(status: int, answer: object, service_url: str | None) -> str | None:
    """What to do about a refusal that has a known cause."""
    text = orjson.dumps(answer).decode() if answer is not None else ""
    if status == 412 and "not-https" in text:
        if service_url:
            return (
                "hint: the running service refuses a plain-http fhirServer; start it with "
                "CDS_ALLOW_HTTP_FHIR=true (local sandboxes only; `make sandbox` does)"
            )
        return "hint: in-process, plain http is allowed for a loopback FHIR server only; use https"
    if status == 401:
        return (
            "hint: the running service checks JWTs (CDS_AUTH=jwt); start it with CDS_AUTH=off for local use"
        )
    return None


def _try(args: argparse.Namespace) -> int:
    """Play the EHR: a hook call with no prefetch, so the service reads everything from the server."""
    service = SERVICES[args.service]
    if args.service_url and args.as_of:
        raise CliError(
            EXIT_USAGE,
            "--as-of applies in-process only: a running service evaluates at its own date "
            "(`make sandbox` serves the fixtures with their dates rebased to today)",
        )
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
    query = "?explain=true" if args.explain else ""
    if args.service_url:
        url = f"{args.service_url.rstrip('/')}/cds-services/{service.id}{query}"
        try:
            response = requests.post(url, json=body, timeout=60)
        except requests.RequestException as error:
            raise CliError(
                EXIT_UNREACHABLE, f"cannot reach the service at {args.service_url} ({type(error).__name__})"
            ) from None
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
            log_level="WARNING",
            demo=bool(args.explain),
        )
        reply = app.test_client().post(f"/cds-services/{service.id}{query}", json=body)
        status, answer = reply.status_code, reply.get_json()
    elapsed_ms = (time.perf_counter() - started) * 1000
    cards = len(answer.get("cards", [])) if isinstance(answer, dict) else 0
    if status == 200 and cards == 0:
        # "No cards" for a patient the server does not have is a typo, not an answer.
        _check_patient_on_server(args.fhir_server, args.patient, args.token)
    if args.explain and status == 200:
        _print_explanation(answer, args.service_url)
    sys.stdout.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stderr.write(f"HTTP {status}, {cards} card(s), total {elapsed_ms:.1f} ms\n")
    hint = _hint(status, answer, args.service_url)
    if hint:
        sys.stderr.write(hint + "\n")
    return 0 if status == 200 else EXIT_SERVICE_ERROR


def _banner(bind: str) -> str:
    """What a first run needs to know, before gunicorn's own lines."""
    settings = load_settings()
    host = bind.split(",")[0]
    auth = "off (local use only)" if settings.auth == "off" else "jwt"
    demo = "on (preview page at /)" if settings.demo else "off"
    return (
        f"spine-cds: serving http://{host}  auth {auth}  demo {demo}  "
        f"database {safe_database_url(settings.database_url)}\n"
    )


def _serve(args: argparse.Namespace) -> int:
    if args.demo:
        os.environ["CDS_DEMO"] = "true"
    if args.bind:
        os.environ["CDS_BIND"] = args.bind
    # The same checks the app makes, before gunicorn starts: one line instead of a worker traceback.
    preflight(load_settings())
    sys.stderr.write(_banner(os.environ.get("CDS_BIND", "127.0.0.1:8080")))
    sys.stderr.flush()
    argv = [
        "gunicorn",
        "--config",
        "python:cds_service.serving.gunicorn_config",
        "cds_service.app:create_app()",
    ]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # pragma: no cover


def _database(args: argparse.Namespace) -> Database:
    from cds_service.config.checks import check_database_url

    url = args.database_url or load_settings().database_url
    check_database_url(url)
    return database_for(url)


def _report(args: argparse.Namespace) -> int:
    from cds_service.analytics.report import build_report
    from cds_service.analytics.text import render_text

    database = _database(args)
    if not database.ensure_schema():
        raise CliError(EXIT_DATABASE, "the database is unavailable (CDS_DATABASE_URL)")
    sys.stdout.write(render_text(build_report(database, args.since)))
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    database = _database(args)
    try:
        database.upgrade()
    except SQLAlchemyError as error:
        raise CliError(
            EXIT_DATABASE, f"the database is unavailable (CDS_DATABASE_URL; {type(error).__name__})"
        ) from None
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
    evaluate.add_argument(
        "--explain",
        action="store_true",
        help="also print (stderr) what each resource matched or why it was set aside, then the decision",
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
    try_.add_argument(
        "--explain",
        action="store_true",
        help="also print (stderr) why the card did (not) appear; a running service needs demo mode",
    )
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
    try:
        return int(args.run(args))
    except CliError as error:
        sys.stderr.write(f"spine-cds: {error}\n")
        return error.code
    except ConfigurationError as error:
        sys.stderr.write(f"spine-cds: {error}\n")
        return EXIT_CONFIGURATION


if __name__ == "__main__":
    raise SystemExit(main())
