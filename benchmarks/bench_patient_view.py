"""In-process patient-view handling time against orjson.loads of the same body (the floor)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import orjson
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


def run() -> str:
    app = create_app(clock=lambda: AS_OF, log_level="WARNING", auth="off")
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
    return (
        "Flask test client, full prefetch, one card; ratio = handling median / `orjson.loads` median of "
        "the same body (target <= 3 at 1,000 resources and above).\n\n" + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    print(run())
