"""docs/conformance.md is complete: every service-side requirement of docs/conformance/*.csv is listed
once with a status, every tested or partial row names tests, and every named test exists (node ids
collected by pytest, without running them)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from functools import cache

from support.builders import ROOT

MATRIX = ROOT / "docs" / "conformance.md"
LISTS = ROOT / "docs" / "conformance"
STATUSES = ("tested", "partial", "n/a")


def _service_side_ids() -> set[str]:
    found: set[str] = set()
    for path in sorted(LISTS.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                actors = {a.strip() for a in row["actors"].split(",")}
                if actors & {"Service", "Server"}:
                    found.add(f"{row['set']}@{row['id']}")
    return found


def _rows() -> list[list[str]]:
    rows = []
    for line in MATRIX.read_text(encoding="utf-8").splitlines():
        if line.startswith("| cds-hooks"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            assert len(cells) == 6, line
            rows.append(cells)
    return rows


@cache
def _collected() -> frozenset[str]:
    """Every test node id of the suite, as `pytest --collect-only` names them."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-o",
            "addopts=",
            "-p",
            "no:cacheprovider",
            "tests",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return frozenset(line for line in result.stdout.splitlines() if "::" in line)


def _exists(node: str, collected: frozenset[str]) -> bool:
    return node in collected or any(c.startswith(node + "[") for c in collected)


def test_the_requirement_lists_are_in_the_repository() -> None:
    ids = _service_side_ids()
    assert sum(1 for i in ids if i.startswith("cds-hooks_2.0@")) == 120  # Service 105 + both 15
    assert sum(1 for i in ids if i.startswith("cds-hooks-library_1.0.1@")) == 23
    assert (LISTS / "README.md").exists()


def test_every_service_side_requirement_is_listed_once_with_a_status() -> None:
    rows = _rows()
    listed = [r[0] for r in rows]
    assert len(listed) == len(set(listed)), "a requirement is listed twice"
    assert set(listed) == _service_side_ids()
    for requirement, _, _, status, tests, note in rows:
        assert status in STATUSES, requirement
        if status == "tested":
            assert tests, f"{requirement}: tested by nothing"
        else:
            assert note, f"{requirement}: {status} needs a reason"


def test_the_counts_in_the_text_match_the_table() -> None:
    rows = _rows()
    counts = {s: sum(1 for r in rows if r[3] == s) for s in STATUSES}
    text = MATRIX.read_text(encoding="utf-8")
    summary = f"**{counts['tested']} tested, {counts['partial']} partial, {counts['n/a']} n/a**"
    assert f"{summary} ({len(rows)} requirements)" in text


def test_every_named_test_exists() -> None:
    collected = _collected()
    assert len(collected) > 500
    named = {node for row in _rows() for node in re.findall(r"`(tests/[^`]+)`", row[4])}
    assert named
    missing = sorted(node for node in named if not _exists(node, collected))
    assert missing == [], missing
