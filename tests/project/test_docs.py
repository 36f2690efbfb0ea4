"""The README keeps its promises: every configuration variable documented, the card picture present."""

from __future__ import annotations

import re
from pathlib import Path

from support.builders import ROOT

from cds_service.config.settings import Settings

README = (ROOT / "README.md").read_text()


def _table_variables() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = _table_variables()
    settings = {f"CDS_{name.upper()}" for name in Settings.model_fields}
    assert settings - documented == set()


def test_every_gunicorn_variable_is_in_the_configuration_table() -> None:
    config = (ROOT / "cds_service" / "serving" / "gunicorn_config.py").read_text()
    used = set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', config)) | {"PROMETHEUS_MULTIPROC_DIR"}
    assert used - _table_variables() == set()


def test_readme_shows_the_preview_screenshot() -> None:
    assert "](docs/img/preview-card.png)" in README
    assert (ROOT / "docs" / "img" / "preview-card.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "make screenshot" in README


def test_readme_starts_with_the_two_commands() -> None:
    block = README.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split()[:2] for line in block] == [["make", "run"], ["make", "test"]]


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_link_of_the_readme_and_docs_resolves_in_the_repository() -> None:
    """A fresh clone has every document the README names: no link leaves the repository's files
    (web links aside), and every relative one exists."""
    broken: list[str] = []
    for document in _documents():
        for target in _LINK.findall(document.read_text()):
            if re.match(r"^[a-z]+://", target) or target.startswith(("#", "mailto:")):
                continue
            path = (document.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{document.name}: {target}")
    assert broken == []


def test_no_document_points_outside_the_repository() -> None:
    for document in _documents():
        assert "../shared/" not in document.read_text(), document.name


def test_the_readme_links_the_user_docs() -> None:
    assert "](docs/clinical-rules.md)" in README
    assert "](docs/api.md)" in README


def test_docs_carry_no_internal_wording() -> None:
    for document in _documents():
        text = document.read_text().lower()
        for phrase in ("later issues", "comes with the security work", "later services add"):
            assert phrase not in text, (document.name, phrase)
