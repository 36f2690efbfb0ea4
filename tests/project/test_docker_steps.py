"""The Dockerfile's steps without a Docker engine (slow: builds a wheel and a fresh venv).

Stage 1: the files the Dockerfile COPYs go to an empty folder and `pip wheel` builds from there.
Stage 2: a fresh venv in a temp dir gets `pip install -c constraints.txt <wheel>`; the build folder
is then deleted and `spine-cds serve` starts from a working directory holding only constraints.txt,
as in the image. The pip cache is used (the image sets PIP_NO_CACHE_DIR; the steps are otherwise
the same) and pip itself is not upgraded. Deselect with `-m "not slow"`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from support.live import ROOT, serve

from cds_service.demo.patients import demo_request, sample_draft_order
from cds_service.hooks.catalogue import REFERRAL

pytestmark = pytest.mark.slow

DOCKERFILE = (ROOT / "Dockerfile").read_text()
WHEEL_STEP = "python -m pip wheel --no-deps --wheel-dir /wheels ."
INSTALL_STEP = "python -m pip install -c constraints.txt /wheels/*.whl"


@dataclass(frozen=True)
class Installed:
    venv: Path
    workdir: Path
    build_log: str

    @property
    def spine_cds(self) -> Path:
        return self.venv / "bin" / "spine-cds"


def _build_stage_copies() -> list[str]:
    """Sources of the build stage's COPY lines (the runtime stage copies from the build stage)."""
    build_stage = DOCKERFILE.split("\nFROM ", 2)[1]
    sources: list[str] = []
    for line in build_stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            sources.extend(line.split()[1:-1])
    return sources


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    assert WHEEL_STEP in DOCKERFILE, "the Dockerfile's wheel step changed: update this test"
    assert INSTALL_STEP in DOCKERFILE, "the Dockerfile's install step changed: update this test"
    base = tmp_path_factory.mktemp("docker-steps")
    src, wheels, workdir, venv = base / "src", base / "wheels", base / "app", base / "venv"
    src.mkdir()
    for name in _build_stage_copies():
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, src / name)
    # -v: the build backend's own output, where setuptools prints its deprecation warnings.
    build_log = _run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--wheel-dir", str(wheels), "."], src
    )
    shutil.rmtree(src)  # nothing of the build tree is left to read from

    workdir.mkdir()
    shutil.copy2(ROOT / "constraints.txt", workdir / "constraints.txt")
    _run([sys.executable, "-m", "venv", str(venv)], workdir)
    wheel_files = [str(p) for p in wheels.glob("*.whl")]
    assert len(wheel_files) == 1
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-c", "constraints.txt", *wheel_files], workdir
    )
    return Installed(venv, workdir, build_log)


def test_the_build_has_no_setuptools_warnings(installed: Installed) -> None:
    """pyproject.toml as setuptools wants it now: SPDX license string, every package listed."""
    assert "SetuptoolsDeprecationWarning" not in installed.build_log
    assert "Package would be ignored" not in installed.build_log
    assert "is deprecated" not in installed.build_log


def test_content_comes_from_the_installed_package(installed: Installed) -> None:
    probe = (
        "import json, cds_service, importlib.resources as r;"
        "print(json.dumps([cds_service.__file__, str(r.files('cds_service.cards') / 'texts.toml'),"
        " str(r.files('cds_service.cards') / 'valuesets'), str(r.files('cds_service.fixtures')),"
        " str(r.files('cds_service.demo') / 'static' / 'preview.js'),"
        " str(r.files('cds_service.docs') / 'clinical-rules.md')]))"
    )
    done = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", probe],
        cwd=installed.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    site = str(installed.venv.resolve())
    for path in json.loads(done.stdout):
        assert str(Path(path).resolve()).startswith(site), path
        assert Path(path).exists(), path
    assert len(list(Path(json.loads(done.stdout)[2]).glob("*.json"))) == len(
        list((ROOT / "cards" / "valuesets").glob("*.json"))
    )


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_installed_service_answers_discovery_and_patient_view(installed: Installed, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    body = orjson.dumps(
        demo_request(
            ROOT / "fhir_fixtures",
            "01-osteoporotic-l1-mri",
            REFERRAL,
            datetime.now(UTC).date(),
            sample_draft_order(),
        )
    )
    env = {"CDS_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with serve(installed.spine_cds, demo=True, env=env, cwd=installed.workdir) as server:
        status, raw = _get(server.base_url + "/cds-services")
        assert status == 200
        assert {s["id"] for s in json.loads(raw)["services"]} == {
            "vertebral-augmentation-referral",
            "vertebral-augmentation-order-select",
            "vertebral-augmentation-order-sign",
        }
        url = f"{server.base_url}/cds-services/{REFERRAL.id}"
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda _: _post(url, body), range(12)))
        assert {status for status, _ in answers} == {200}
        cards = [json.loads(raw)["cards"] for _, raw in answers]
        assert all(len(c) == 1 for c in cards)
        assert "L1" in cards[0][0]["summary"]

        status, page = _get(server.base_url + "/")
        assert status == 200
        assert b'data-scenario="76-noise-only"' in page  # fixtures shipped in the wheel
        assert _get(server.base_url + "/preview/static/preview.js")[0] == 200
        assert _get(server.base_url + "/readyz")[0] == 200

        # Metrics add up over both workers (prometheus_client multiprocess mode).
        metrics = _get(server.base_url + "/metrics")[1].decode()
        count = re.search(
            r'cds_request_duration_seconds_count\{endpoint="hooks.call_service",'
            r'service="vertebral-augmentation-referral",status="200"\} (\S+)',
            metrics,
        )
        assert count is not None, metrics[:2000]
        assert float(count.group(1)) == 12
        assert (
            'cds_cards_total{recommendation="refer",service="vertebral-augmentation-referral"} 12.0'
            in metrics
        )
        assert list(metrics_dir.glob("*.db")), "workers wrote no multiprocess metric files"
