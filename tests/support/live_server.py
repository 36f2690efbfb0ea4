"""The service as a real gunicorn process on a free local port (schemathesis, restart tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping

import requests

from support.postgres import free_port


class LiveServer:
    def __init__(self, env: Mapping[str, str], workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CDS_WORKERS": str(workers), "CDS_THREADS": "4", **env}
        self.env["CDS_BIND"] = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a chatty server must never block on a full pipe.
        self.log = tempfile.NamedTemporaryFile(prefix="cds-server-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> LiveServer:
        argv = [sys.executable, "-m", "gunicorn", "--config", "python:cds_service.serving.gunicorn_config"]
        self.process = subprocess.Popen(
            [*argv, "cds_service.app:create_app()"],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.logged()[-2000:]}")
            try:
                requests.get(self.url + "/cds-services", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    def stop(self) -> str:
        """Graceful stop (SIGTERM, as a process manager does); returns what the server logged."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        return self.logged()

    def logged(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()
