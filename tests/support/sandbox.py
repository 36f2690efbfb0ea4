"""`make sandbox`: a local FHIR server with the fixture patients (dates rebased to today) and the
service pointed at it, so an integrator can use the CDS Hooks Sandbox or `spine-cds try` at once.

Starts the test FHIR server (tests/fhir_server, Node) and `spine-cds serve --demo` with auth off and
plain-http FHIR allowed (both on loopback only), prints what to paste, and stops both on Ctrl-C.
Needs only the runtime install (no test tools): `--port 0` / `--fhir-port 0` pick free ports.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from types import FrameType

import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cds_service.clock import utc_today
from cds_service.demo.scenario import rebase_dates
from support.fhir_server import FhirServerError, FhirTestServer

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fhir_fixtures"
SANDBOX_DIR = ROOT / "instance" / "sandbox"
"""Inside the project (ignored by git): the rebased fixtures and the sandbox's own database."""
DEMO_PATIENT_FIXTURE = "01-osteoporotic-l1-mri"
READY_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rebase_fixtures(source: Path, target: Path, today: date) -> int:
    """Copy every scenario's bundle with its dates moved so that its asOf is today."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    count = 0
    for folder in sorted(p for p in source.iterdir() if (p / "bundle.json").is_file()):
        bundle = orjson.loads((folder / "bundle.json").read_bytes())
        meta_path = folder / "scenario.json"
        meta = orjson.loads(meta_path.read_bytes()) if meta_path.is_file() else {}
        if "asOf" in meta:
            bundle = rebase_dates(bundle, (today - date.fromisoformat(meta["asOf"])).days)
        (target / folder.name).mkdir()
        (target / folder.name / "bundle.json").write_bytes(orjson.dumps(bundle))
        count += 1
    return count


def _patient_of(fixture: Path) -> str:
    bundle = orjson.loads((fixture / "bundle.json").read_bytes())
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "Patient":
            return str(resource["id"])
    raise SystemExit(f"sandbox: {fixture.name} has no Patient")


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"sandbox: the service exited with code {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"sandbox: the service did not answer {url} within {timeout_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="service port (0: a free one)")
    parser.add_argument("--fhir-port", type=int, default=8103, help="FHIR server port (0: a free one)")
    args = parser.parse_args(argv)
    service_port = args.port or _free_port()

    loaded = rebase_fixtures(FIXTURES, SANDBOX_DIR / "fixtures", utc_today())
    fhir = FhirTestServer(SANDBOX_DIR / "fixtures", listen_port=args.fhir_port)
    try:
        fhir.start()
    except FhirServerError as error:
        sys.stderr.write(f"sandbox: the FHIR server did not start: {str(error).splitlines()[0]}\n")
        return 5
    env = {
        **os.environ,
        "CDS_AUTH": "off",
        "CDS_ALLOW_HTTP_FHIR": "true",
        "CDS_DEMO": "true",
        "CDS_DATABASE_URL": f"sqlite:///{SANDBOX_DIR / 'cds.sqlite'}",
        "CDS_WORKERS": os.environ.get("CDS_WORKERS", "2"),
        "PROMETHEUS_MULTIPROC_DIR": str(SANDBOX_DIR / "prometheus"),
    }
    spine_cds = str(Path(sys.executable).with_name("spine-cds"))
    service = subprocess.Popen([spine_cds, "serve", "--bind", f"127.0.0.1:{service_port}"], env=env)

    def stop(signum: int | None = None, frame: FrameType | None = None) -> None:
        if service.poll() is None:
            service.terminate()
            try:
                service.wait(25)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
        fhir.stop()

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        base = f"http://127.0.0.1:{service_port}"
        _wait_for(f"{base}/healthz", service, READY_TIMEOUT_S)
        patient = _patient_of(FIXTURES / DEMO_PATIENT_FIXTURE)
        lines = [
            "",
            f"sandbox: {loaded} fixture scenarios on a local FHIR server, dates rebased to today",
            f"  CDS Hooks Sandbox discovery URL: {base}/cds-services",
            f"  fhirServiceUrl:                  {fhir.base_url}",
            f"  patient id:                      {patient}",
            f"  try it:  .venv/bin/spine-cds try --fhir-server {fhir.base_url} --patient {patient} "
            f"--service-url {base}",
            f"  preview page: {base}/   (auth off, plain-http FHIR allowed: local use only)",
            "  Ctrl-C stops both.",
            "",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        while service.poll() is None:
            time.sleep(0.5)
        return service.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    raise SystemExit(main())
