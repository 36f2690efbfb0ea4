"""A light first run: `make run` installs the runtime only, says what it is serving, and writes
nothing outside the project directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import requests
from support.builders import ROOT
from support.postgres import free_port

MAKEFILE = (ROOT / "Makefile").read_text()


def _recipe(target: str) -> tuple[str, list[str]]:
    """A Makefile rule's prerequisites and recipe lines."""
    match = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n)*)", MAKEFILE, flags=re.MULTILINE)
    assert match, target
    prerequisites = match.group(1).split("##")[0].strip()
    return prerequisites, [line.strip() for line in match.group(2).splitlines()]


def test_make_run_needs_the_runtime_install_only() -> None:
    prerequisites, _ = _recipe("run")
    assert prerequisites == "$(RUNTIME_STAMP)"
    _, runtime_install = _recipe("$(RUNTIME_STAMP)")
    installs = [line for line in runtime_install if " install " in line]
    assert installs == ["$(PIP) install --quiet -c constraints.txt -e ."]
    _, dev_install = _recipe("$(STAMP)")
    assert any("-e '.[dev]'" in line for line in dev_install)
    for target in ("lint", "typecheck", "pytest"):
        assert _recipe(target)[0] == "$(STAMP)", target
    assert "--no-cache-dir" in MAKEFILE  # pip keeps no cache in the home directory


def test_serve_prints_a_banner_and_writes_nothing_in_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    workdir = tmp_path / "project"
    workdir.mkdir()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "CDS_DATABASE_URL")},
        "HOME": str(home),
        "CDS_AUTH": "off",
        "CDS_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "instance" / "prometheus"),
    }
    log = workdir / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "spine-cds"), "serve", "--demo", "--bind", f"127.0.0.1:{port}"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.2)
            assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200  # demo page
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    first = log.read_text().splitlines()[0]
    assert first.startswith(f"spine-cds: serving http://127.0.0.1:{port}")
    assert "auth off" in first
    assert "demo on" in first
    assert "database sqlite:///instance/cds.sqlite" in first
    assert list(home.iterdir()) == []  # no ~/.gunicorn/gunicorn.ctl, no caches
    assert (workdir / "instance" / "cds.sqlite").exists()  # the database stays in the project
