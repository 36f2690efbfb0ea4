"""What the gunicorn benchmarks share: a service under the shipped gunicorn config on a free
loopback port, and wrk runs read back as numbers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn with the shipped config (access log off), once it answers /healthz; its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:cds_service.serving.gunicorn_config",
            "--access-logfile",
            "/dev/null",
            app,
        ],
        cwd=ROOT,
        env={**env, "CDS_BIND": f"127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(f"{base}/healthz", timeout=1)
            _wait_for_workers(server.pid, int(env.get("CDS_WORKERS", os.cpu_count() or 1)))
            return server, base
        except requests.ConnectionError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("server did not start")


def _wait_for_workers(master: int, expected: int) -> None:
    """The first worker answers /healthz while the others may still be forking; wrk opens its
    kept-alive connections at once, and a connection stays with the worker that accepted it, so a
    run started then measured one worker holding every connection (seen: the 8-connection rows at
    500 requests/s against 1,400 when both workers took a share)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    deadline = time.monotonic() + 30
    while children.exists() and len(children.read_text().split()) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.05)
    time.sleep(0.5)  # forked workers publish their connection count when their event loop runs


@dataclass(frozen=True)
class WrkRun:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    output: str


def wrk(url: str, script: Path, *, threads: int, connections: int, seconds: int) -> WrkRun:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkRun(rps, pct("50"), pct("99"), done, out)
