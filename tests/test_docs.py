"""The README keeps its promises: every configuration variable documented, the card picture present."""

from __future__ import annotations

import re
from pathlib import Path

from cds_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _table_variables() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = _table_variables()
    settings = {f"CDS_{name.upper()}" for name in Settings.model_fields}
    assert settings - documented == set()


def test_every_gunicorn_variable_is_in_the_configuration_table() -> None:
    config = (ROOT / "cds_service" / "gunicorn_config.py").read_text()
    used = set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', config)) | {"PROMETHEUS_MULTIPROC_DIR"}
    assert used - _table_variables() == set()


def test_readme_shows_the_preview_screenshot() -> None:
    assert "](docs/img/preview-card.png)" in README
    assert (ROOT / "docs" / "img" / "preview-card.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "make screenshot" in README


def test_readme_starts_with_the_two_commands() -> None:
    block = README.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split()[:2] for line in block] == [["make", "run"], ["make", "test"]]
