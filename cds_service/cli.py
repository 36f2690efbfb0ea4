"""spine-cds: evaluate FHIR exports offline, print demo requests, serve under gunicorn."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from cds_service.offline import hook_request_for, patient_ids, read_scenario, rebase_dates
from cds_service.runtime import utc_today
from cds_service.services import SERVICES, ServiceDefinition
from cds_service.store.database import Database, database_for, head_revision


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
    return 0 if response.status_code == 200 else 1


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
