"""Peak memory for the 10,000-resource patient-view request, beyond the process's baseline."""

from __future__ import annotations

import gc
import tracemalloc

import orjson
from records import AS_OF, patient_view_request

from cds_service.app import create_app

URL = "/cds-services/vertebral-augmentation-referral"


def _peak(fn: object) -> int:
    gc.collect()
    tracemalloc.start()
    fn()  # type: ignore[operator]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run() -> str:
    client = create_app(clock=lambda: AS_OF, log_level="WARNING", auth="off").test_client()
    body = orjson.dumps(patient_view_request(10_000))
    small = orjson.dumps(patient_view_request(10))
    client.post(URL, data=small, content_type="application/json")  # warm: lazy imports, caches
    handled = _peak(lambda: client.post(URL, data=body, content_type="application/json"))
    floor = _peak(lambda: orjson.loads(body))
    mb = len(body) / 1e6
    return (
        "Python heap peak (tracemalloc) while handling one request, beyond the warmed-up app; the body "
        "itself is held by the request.\n\n"
        "| what | peak MB | x body |\n| --- | ---: | ---: |\n"
        f"| request body (10,000 resources) | {mb:.1f} | 1.0 |\n"
        f"| patient-view handling | {handled / 1e6:.1f} | {handled / len(body):.1f} |\n"
        f"| `orjson.loads` of the body alone (for scale) | {floor / 1e6:.1f} | {floor / len(body):.1f} |\n\n"
        f"Target: under 4x the body beyond the baseline.\n"
    )


if __name__ == "__main__":
    print(run())
