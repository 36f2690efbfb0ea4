"""A real server and a real browser for the tests that need them (and `make screenshot`).

The server is `spine-cds serve` (gunicorn with the shared config) on a free loopback port; the
browser is Debian's Chromium driven by Playwright through `executable_path` (never a downloaded
browser build). When Chromium is missing and we are root with apt-get, it is installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Playwright adds --headless and a fresh temporary --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_ready(server: LiveServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.base_url + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout_s} s:\n{server.log()}")


@contextmanager
def serve(
    spine_cds: Path | str | None = None,
    *,
    demo: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 30,
) -> Iterator[LiveServer]:
    """`spine-cds serve` on a free port until the block ends (then SIGTERM, as an orchestrator does)."""
    port = free_port()
    command = [
        str(spine_cds or Path(sys.executable).parent / "spine-cds"),
        "serve",
        "--bind",
        f"127.0.0.1:{port}",
    ]
    if demo:
        command.append("--demo")
    inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    full_env = {**inherited, "CDS_AUTH": "off", "CDS_WORKERS": "1", **(env or {})}
    log_file = tempfile.NamedTemporaryFile(prefix="spine-cds-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(command, env=full_env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", process, Path(log_file.name))
    try:
        _wait_ready(server, timeout_s)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log_file.close()


def find_chromium() -> str | None:
    for candidate in (*CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def ensure_chromium() -> tuple[str | None, str]:
    """Chromium's path, installing Debian's package when we can; else None and why not."""
    found = find_chromium()
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "no Chromium and no apt-get to install it (Debian package: chromium)"
    if os.geteuid() != 0:
        return None, "no Chromium and not root: run `sudo apt-get install chromium` to run the browser tests"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium", "fonts-dejavu-core"],
    )
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    found = find_chromium()
    if not found:
        raise RuntimeError("apt-get installed chromium but no chromium binary was found")
    return found, ""


def launch_chromium(playwright: Playwright, executable: str) -> Browser:
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)


def open_patient(page: Page, base_url: str, scenario: str) -> None:
    """Load the preview page, choose a patient, wait until its patient-view answer is shown."""
    page.goto(base_url + "/")
    page.click(f'button.patient[data-scenario="{scenario}"]')
    page.wait_for_selector('#cards[data-state="done"], #cards[data-state="error"]')


def screenshot_chart(page: Page, path: Path) -> None:
    """The chart pane (header, card) as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.locator("section.chart").screenshot(path=str(path))
