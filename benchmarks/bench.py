"""`make bench`: every benchmark section, printed and written to benchmarks/RESULTS.md with the
machine it ran on. Ratios, not absolute times, are what the targets are about."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_fetch  # noqa: E402
import bench_http  # noqa: E402
import bench_load  # noqa: E402
import bench_memory  # noqa: E402
import bench_patient_view  # noqa: E402
import bench_report_text  # noqa: E402

SECTIONS = [
    ("1. In-process patient-view vs `orjson.loads`", bench_patient_view.run),
    ("2. HTTP under gunicorn vs a trivial endpoint", bench_http.run),
    ("3. Fetch path: no prefetch, FHIR server answering after 100 ms", bench_fetch.run),
    ("4. Peak memory, 10,000 resources", bench_memory.run),
    ("5. Load with JWT on: 8 and 32 connections, SQLite and PostgreSQL", bench_load.run),
    ("6. Radiology report text analysis", bench_report_text.run),
]


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    today = datetime.now(UTC).date().isoformat()
    return f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {python}, {today}"


def main() -> int:
    only = set(sys.argv[1:])
    parts = [f"# Benchmark results\n\nMachine: {machine()}.\n"]
    for title, run in SECTIONS:
        if only and not any(word in title.lower() for word in only):
            continue
        print(f"## {title}", flush=True)
        text = run()
        print(text, flush=True)
        parts.append(f"## {title}\n\n{text}")
    if not only:
        (HERE / "RESULTS.md").write_text("\n".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
