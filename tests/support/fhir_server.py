"""Start the local FHIR R4 test server (tests/fhir_server/server.mjs) from Python tests.

The server is Medplum's real FHIR engine over an in-memory store, loaded from fixture bundles,
so integration tests exercise a genuine FHIR API (search, paging, OperationOutcomes) plus
fault injection, without any network access or external service.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

SERVER_DIR = Path(__file__).resolve().parent.parent / "fhir_server"
"""Folder with server.mjs, package.json and package-lock.json."""

NODE_FLAGS: tuple[str, ...] = ()
"""Extra node flags; none are needed with the pinned Medplum 4.x on Node >= 20.19."""

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0


class FhirServerError(RuntimeError):
    """The test server could not be installed or started."""


EXAMPLES_DIR = SERVER_DIR / "node_modules" / "hl7.fhir.r4.examples"
"""The official FHIR R4 examples (npm hl7.fhir.r4.examples, a devDependency): one JSON file each."""

_INSTALLED_MARKERS = (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router", EXAMPLES_DIR)


def ensure_node_modules() -> None:
    """Install the pinned npm packages once, so a fresh checkout or CI can run the server."""
    if all(marker.is_dir() for marker in _INSTALLED_MARKERS):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise FhirServerError(
            "npm is not on PATH: install Node.js >= 20.19 with npm to run the FHIR test server"
        )
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=SERVER_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise FhirServerError(f"npm ci failed in {SERVER_DIR}:\n{result.stdout}\n{result.stderr}")


class FhirTestServer:
    """A running server process; use as a context manager so it never outlives the test."""

    def __init__(
        self, fixtures: str | os.PathLike[str], node_flags: Sequence[str] = NODE_FLAGS, listen_port: int = 0
    ) -> None:
        self.fixtures = Path(fixtures).resolve()  # node runs in SERVER_DIR
        self.node_flags = tuple(node_flags)
        self.listen_port = listen_port
        """0: a free port chosen by the system (tests); `make sandbox` asks for a fixed one."""
        self.port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: list[str] = []

    @property
    def base_url(self) -> str:
        """FHIR base URL, e.g. http://127.0.0.1:PORT/fhir/R4."""
        return f"{self._origin}/fhir/R4"

    @property
    def _origin(self) -> str:
        if self.port is None:
            raise FhirServerError("server is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FhirTestServer:
        """Start node and block until it prints its port, so tests never race the startup."""
        ensure_node_modules()
        node = shutil.which("node")
        if node is None:
            raise FhirServerError("node is not on PATH: install Node.js >= 20.19")
        cmd = [
            node,
            *self.node_flags,
            "server.mjs",
            "--port",
            str(self.listen_port),
            "--fixtures",
            str(self.fixtures),
        ]
        proc = subprocess.Popen(
            cmd, cwd=SERVER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._proc = proc
        stdout, stderr = proc.stdout, proc.stderr
        if stdout is None or stderr is None:  # only to narrow types: both are PIPEs
            raise FhirServerError("no pipes to the server process")
        # Drain stderr in the background so a chatty server can't block on a full pipe.
        drain = threading.Thread(target=self._stderr.extend, args=(stderr,), daemon=True)
        drain.start()
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT_S)
        try:
            self.port = int(json.loads(line[0])["listening"])
        except (IndexError, ValueError, KeyError, TypeError) as exc:
            self.stop()
            drain.join(STOP_TIMEOUT_S)
            raise FhirServerError(
                f"FHIR test server did not start within {STARTUP_TIMEOUT_S:.0f} s; "
                f"stdout: {line!r}; stderr:\n{''.join(self._stderr)}"
            ) from exc
        return self

    def stop(self) -> None:
        """Terminate, then kill, so a hung server can't keep a port or a CI job alive."""
        proc, self._proc, self.port = self._proc, None, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def control(self, **settings: Any) -> dict[str, Any]:
        """Inject faults for subsequent FHIR requests, e.g. control(status=503, times=1)."""
        response = requests.post(f"{self._origin}/__control", json=settings, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> None:
        """Clear faults and the request log, so each test starts from a clean server."""
        requests.post(f"{self._origin}/__control/reset", timeout=10).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        """Requests received since the last reset: method, path, hasAuthorization, authorization."""
        response = requests.get(f"{self._origin}/__requests", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def __enter__(self) -> FhirTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
