"""Running spine-cds in tests: in-process through `main()` (fast: no interpreter start, no imports),
or as the installed console script for the few tests that must prove the script itself."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cds_service.cli.main import main
from support.builders import FIXTURES

POSITIVE = FIXTURES / "01-osteoporotic-l1-mri"
NEGATIVE = FIXTURES / "76-noise-only"
CONSOLE_SCRIPT = Path(sys.executable).with_name("spine-cds")


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def spine_cds(*args: str) -> CliResult:
    """`spine-cds ARGS` in this process: exit code and both streams, as a subprocess would give."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse: --help, usage errors
            code = stop.code if isinstance(stop.code, int) else 2
    return CliResult(code, out.getvalue(), err.getvalue())


def spine_cds_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script in its own process (its environment is this one's)."""
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, check=False, timeout=60
    )
