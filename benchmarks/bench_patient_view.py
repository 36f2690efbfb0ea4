"""In-process patient-view handling time against orjson.loads of the same body (the floor).

Run with `make bench`. Prints a table and writes benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import AS_OF, patient_view_request

from cds_service.app import create_app

SIZES = (10, 100, 1_000, 2_000, 10_000)
URL = "/cds-services/vertebral-augmentation-referral"


def _timings(
    fn: Callable[[], object], budget_s: float = 2.0, min_runs: int = 15, max_runs: int = 400
) -> list[float]:
    fn()  # warm-up
    runs: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(runs) < min_runs or (time.perf_counter() < deadline and len(runs) < max_runs):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return runs


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main() -> int:
    app = create_app(clock=lambda: AS_OF, auth="off")
    client = app.test_client()
    rows = []
    for size in SIZES:
        body = orjson.dumps(patient_view_request(size))

        def handle(body: bytes = body) -> object:
            response = client.post(URL, data=body, content_type="application/json")
            assert response.status_code == 200
            assert len(response.get_json()["cards"]) == 1
            return response

        handled = _timings(handle)
        floor = _timings(lambda body=body: orjson.loads(body))
        median, floor_median = statistics.median(handled), statistics.median(floor)
        rows.append((size, len(body) / 1e6, median, _p95(handled), floor_median, median / floor_median))
    header = "| resources | body MB | handling median ms | p95 ms | orjson.loads median ms | ratio |"
    lines = [header, "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {s:,} | {mb:.2f} | {m:.2f} | {p:.2f} | {f:.2f} | {r:.1f} |" for s, mb, m, p, f, r in rows]
    table = "\n".join(lines)
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        machine += f", {mem_gib:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    print(table)
    out = Path(__file__).resolve().parent / "RESULTS.md"
    out.write_text(
        "# Benchmark results\n\n"
        f"Machine: {machine}. In-process patient-view (Flask test client, full prefetch, one card), "
        "against `orjson.loads` of the same request body.\n\n" + table + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
