"""Hook latency when prefetch is missing, against a FHIR server that answers each request after 100 ms.

Fetching is parallel, so the latency should stay near one round trip whatever the number of
missing resource types. Part of `make bench`; alone: `make bench-fetch` (needs Node.js: it starts
the Medplum test server of tests/fhir_server).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.fhir_server import FhirTestServer

from cds_service.app import create_app
from cds_service.demo.scenario import hook_request_for, read_scenario
from cds_service.hooks.catalogue import REFERRAL, ServiceDefinition
from cds_service.hooks.prefetch import PrefetchQuery
from cds_service.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
DELAY_MS = 100
RUNS = 25
COUNTS = (0, 1, 2, 4)
FIXTURE = ROOT / "fhir_fixtures" / "01-osteoporotic-l1-mri"
PATIENT = "s01-patient"


def bench_service() -> ServiceDefinition:
    """The referral service's prefetch, topped up to four resource types for the benchmark."""
    prefetch = dict(REFERRAL.prefetch)
    extra = ("Procedure", "MedicationRequest", "AllergyIntolerance", "ServiceRequest")
    for resource_type in extra:
        if len({q.resource_type for q in prefetch.values()}) >= max(COUNTS):
            break
        if all(q.resource_type != resource_type for q in prefetch.values()):
            template = f"{resource_type}?patient={{{{context.patientId}}}}"
            prefetch[f"bench-{resource_type.lower()}"] = PrefetchQuery(template, resource_type)
    return dataclasses.replace(REFERRAL, id="bench-fetch", prefetch=prefetch)


def run() -> str:
    scenario = read_scenario(FIXTURE)
    assert scenario.as_of is not None
    as_of = scenario.as_of
    service = bench_service()
    # Conditions first: the required key is the one that is missing in real life.
    keys = sorted(service.prefetch, key=lambda k: (not service.prefetch[k].required, k))
    app = create_app(clock=lambda: as_of, allow_http_fhir=True, auth="off", record_cards=False)
    runtime = app.extensions["cds"]
    assert isinstance(runtime, Runtime)
    app.extensions["cds"] = dataclasses.replace(runtime, services={service.id: service})
    client = app.test_client()
    full = hook_request_for(scenario.resources, service, PATIENT)
    rows = []
    with FhirTestServer(ROOT / "fhir_fixtures") as server:
        server.control(delayMs=DELAY_MS)
        session = requests.Session()
        url = f"{server.base_url}/Condition?patient={PATIENT}"
        session.get(url, timeout=10)
        one_trip = statistics.median(_time(lambda: session.get(url, timeout=10)) for _ in range(15))
        for count in COUNTS:
            body = {
                **full,
                "fhirServer": server.base_url,
                "fhirAuthorization": {"access_token": "bench", "token_type": "Bearer"},
                "prefetch": {k: v for k, v in full["prefetch"].items() if k not in keys[:count]},
            }

            def call(body: dict[str, object] = body) -> None:
                response = client.post(f"/cds-services/{service.id}", json=body)
                assert response.status_code == 200, response.get_data(as_text=True)
                assert len(response.get_json()["cards"]) == 1

            for _ in range(3):  # warm up: keep-alive connections on the pool threads
                call()
            times = sorted(_time(call) for _ in range(RUNS))
            rows.append((count, statistics.median(times), times[int(len(times) * 0.95) - 1], times[-1]))
    lines = [
        f"One direct round trip to the server (delay {DELAY_MS} ms): {one_trip:.1f} ms.",
        "",
        "| missing resource types | median ms | p95 ms | max ms | if fetched one after another |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {c} | {m:.1f} | {p:.1f} | {x:.1f} | ~{c * one_trip:.0f} ms |" for c, m, p, x in rows]
    return (
        "In-process patient-view (Flask test client), fixture 01, the FHIR test server answering every "
        f"request after {DELAY_MS} ms; the missing types are fetched from it ({RUNS} runs each). "
        "Target: within 1.5x of a single chain.\n\n" + "\n".join(lines) + "\n"
    )


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


if __name__ == "__main__":
    print(run())
