"""HTTP under gunicorn with the shipped config: a typical record (~100 resources) against the
trivial endpoint of the same app, at a fixed concurrency, measured with wrk."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
import requests
from gunicorn_wrk import serve, wrk
from records import patient_view_request

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 8
SIZES = (100, 1_000)
SINGLE_SIZES = (1_000, 10_000)
TARGETS = {100: 0.70, 1_000: 0.60}
DURATION_S = 5
ROUNDS = 3
"""Each endpoint runs ROUNDS times, alternating with the other: a shared host's slow phases then hit
both, and the row gives the median round. Worker CPU per request is printed beside: it does not
depend on what else the host runs, so its ratio is the steadier view of the same capacity."""
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{path}", "rb")
wrk.body = f:read("*a")
f:close()
"""


def _post_script(folder: Path, body: bytes) -> Path:
    """A wrk script in `folder` that posts `body` as JSON."""
    (folder / "body.json").write_bytes(body)
    script = folder / "post.lua"
    script.write_text(LUA.format(path=folder / "body.json"))
    return script


def _workers_cpu_s(master: int) -> float:
    """User + system CPU seconds of the gunicorn master's children (the workers) so far."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def _measure(url: str, script: Path, master: int) -> tuple[float, float, float, float]:
    """requests/s, p50 ms, p99 ms and worker CPU ms per request of one wrk run."""
    before = _workers_cpu_s(master)
    run = wrk(url, script, threads=2, connections=CONCURRENCY, seconds=DURATION_S)
    cpu_ms = (_workers_cpu_s(master) - before) * 1000 / max(1, run.requests)
    return run.requests_per_s, run.p50_ms, run.p99_ms, cpu_ms


def _median_round(rounds: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    ordered = sorted(rounds)
    return ordered[len(ordered) // 2]


def run() -> str:
    if shutil.which("wrk") is None:
        return "wrk is not installed (Debian package `wrk`): HTTP benchmark skipped.\n"
    env = dict(os.environ, CDS_AUTH="off", CDS_LOG_LEVEL="WARNING")
    server, base = serve("benchmarks.bench_app:app", env)
    try:
        rows = []
        for size in SIZES:
            body = orjson.dumps(patient_view_request(size, as_of=datetime.now(UTC).date()))
            answer = requests.post(
                f"{base}/cds-services/vertebral-augmentation-referral",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=10,
            ).json()
            assert len(answer["cards"]) == 1, "the benchmark record must produce one card"
            with tempfile.TemporaryDirectory() as tmp:
                script = _post_script(Path(tmp), body)
                trivial_runs, real_runs = [], []
                for _ in range(ROUNDS):
                    trivial_runs.append(_measure(f"{base}/bench/parse", script, server.pid))
                    real_runs.append(
                        _measure(f"{base}/cds-services/vertebral-augmentation-referral", script, server.pid)
                    )
            rows.append((size, len(body), _median_round(trivial_runs), _median_round(real_runs)))
        single = _one_call_at_a_time(base)
    finally:
        server.terminate()
        server.wait(timeout=30)
    workers = os.environ.get("CDS_WORKERS", str(os.cpu_count()))
    lines = [
        "| resources | body kB | endpoint | requests/s | p50 ms | p99 ms | worker CPU ms / request "
        "| throughput ratio (target) | CPU ratio |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, length, trivial, real in rows:
        target = TARGETS[size]
        lines.append(
            f"| {size:,} | {length / 1000:.0f} | trivial `/bench/parse` | {trivial[0]:.0f} | "
            f"{trivial[1]:.2f} | {trivial[2]:.2f} | {trivial[3]:.2f} | | |"
        )
        lines.append(
            f"| {size:,} | {length / 1000:.0f} | patient-view | {real[0]:.0f} | {real[1]:.2f} | "
            f"{real[2]:.2f} | {real[3]:.2f} | **{real[0] / trivial[0]:.0%}** (>= {target:.0%}) | "
            f"{trivial[3] / real[3]:.0%} |"
        )
    return (
        f"gunicorn with the shipped config (`cds_service/serving/gunicorn_config.py`: {workers} workers x "
        f"{os.environ.get('CDS_THREADS', '4')} threads, cards recorded on SQLite), wrk -c{CONCURRENCY}, "
        f"{ROUNDS} alternating rounds of {DURATION_S} s per endpoint, median round shown; the trivial "
        'endpoint reads the same body, parses it with orjson and answers `{"cards": []}`. CPU ratio = '
        "trivial worker CPU per request / patient-view's (the capacity ratio, steadier than throughput "
        "on a shared host).\n\n" + "\n".join(lines) + "\n\n" + single
    )


def _one_call_at_a_time(base: str) -> str:
    """Large bodies, one connection, one call at a time: what reading a body costs under gunicorn,
    which the in-process rows cannot show (a 10 MB body took 1.8 s here before the worker and
    `request_body` stopped copying it per read)."""
    lines = [
        "One connection, one call at a time (wrk -c1, 4 s), p50 ms per call:\n",
        "| resources | body MB | trivial `/bench/parse` | patient-view |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for size in SINGLE_SIZES:
        body = orjson.dumps(patient_view_request(size, as_of=datetime.now(UTC).date()))
        with tempfile.TemporaryDirectory() as tmp:
            script = _post_script(Path(tmp), body)
            p50 = [
                wrk(f"{base}{path}", script, threads=1, connections=1, seconds=4).p50_ms
                for path in ("/bench/parse", "/cds-services/vertebral-augmentation-referral")
            ]
        lines.append(f"| {size:,} | {len(body) / 1e6:.1f} | {p50[0]:.1f} | {p50[1]:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
