"""`make sandbox` end to end, as an integrator uses it: start it, paste what it prints, get a card.

The sandbox script runs as a subprocess on free ports (a real Node FHIR server with the rebased
fixtures, a real gunicorn service); the calls are the CDS Hooks Sandbox's: discovery, then a hook
call with no prefetch that the service answers by reading the FHIR server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support.builders import ROOT
from support.fhir_server import ensure_node_modules

SANDBOX = ROOT / "tests" / "support" / "sandbox.py"


@dataclass
class Sandbox:
    process: subprocess.Popen[str]
    printed: str
    home: Path

    def value(self, label: str) -> str:
        match = re.search(rf"{re.escape(label)}:\s+(\S.*)", self.printed)
        assert match, self.printed
        return match.group(1).strip()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    ensure_node_modules()
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home), "CDS_WORKERS": "1"}
    env.pop("XDG_RUNTIME_DIR", None)
    process = subprocess.Popen(
        [sys.executable, str(SANDBOX), "--port", "0", "--fhir-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    stdout = process.stdout

    def read_all() -> None:
        """Keep draining stdout (the service's access log follows) so the sandbox never blocks."""
        for line in iter(stdout.readline, ""):
            lines.append(line)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not any("Ctrl-C" in line for line in lines) and time.monotonic() < deadline:
        assert process.poll() is None, "".join(lines)
        time.sleep(0.2)
    assert any("Ctrl-C" in line for line in lines), "".join(lines)
    box = Sandbox(process, "".join(lines[: next(i for i, x in enumerate(lines) if "Ctrl-C" in x) + 1]), home)
    yield box
    if process.poll() is None:
        process.kill()
        process.wait()


def test_it_prints_the_three_things_to_paste(sandbox: Sandbox) -> None:
    assert re.fullmatch(
        r"http://127\.0\.0\.1:\d+/cds-services", sandbox.value("CDS Hooks Sandbox discovery URL")
    )
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/fhir/R4", sandbox.value("fhirServiceUrl"))
    assert sandbox.value("patient id") == "s01-patient"


def test_discovery_and_a_hook_call_without_prefetch_give_a_card(sandbox: Sandbox) -> None:
    discovery = sandbox.value("CDS Hooks Sandbox discovery URL")
    services = requests.get(discovery, timeout=10).json()["services"]
    referral = next(s for s in services if s["hook"] == "patient-view")
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": sandbox.value("fhirServiceUrl"),
        "context": {"userId": "Practitioner/example", "patientId": sandbox.value("patient id")},
    }
    # As the browser-based CDS Hooks Sandbox calls: a CORS request from its origin.
    answer = requests.post(
        f"{discovery}/{referral['id']}",
        json=body,
        headers={"Origin": "https://sandbox.cds-hooks.org"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")
    (card,) = answer.json()["cards"]
    finding = card["extension"]["vertebral-augmentation-cds/finding"]
    assert finding["recommendation"] == "refer"  # the fixture's dates were rebased to today
    assert "Condition/s01-fx" in finding["fractures"][0]["evidence"]


def test_the_printed_try_line_shows_a_card(sandbox: Sandbox) -> None:
    line = sandbox.value("try it")
    argv = line.split()
    assert argv[0] == ".venv/bin/spine-cds"
    result = subprocess.run(
        [sys.executable, "-m", "cds_service.cli.main", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "HTTP 200, 1 card(s)" in result.stderr


def test_the_fhir_server_reads_like_a_fhir_server(sandbox: Sandbox) -> None:
    base = sandbox.value("fhirServiceUrl")
    metadata = requests.get(f"{base}/metadata", timeout=10).json()
    assert metadata["resourceType"] == "CapabilityStatement"
    assert metadata["fhirVersion"] == "4.0.1"


def test_ctrl_c_stops_both(sandbox: Sandbox) -> None:
    """Last in this module: it ends the sandbox."""
    service = sandbox.value("CDS Hooks Sandbox discovery URL")
    fhir = sandbox.value("fhirServiceUrl")
    sandbox.process.send_signal(signal.SIGINT)
    assert sandbox.process.wait(40) == 0
    for url in (service, f"{fhir}/metadata"):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    # Nothing written to the home directory (gunicorn's control socket is off).
    assert list(sandbox.home.iterdir()) == []
