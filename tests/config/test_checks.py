"""A configuration mistake stops the start with one line naming the setting; a configuration that
would refuse every call does not start at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service.app import create_app
from cds_service.config.checks import ConfigurationError


def _refused(setting: str, **overrides: object) -> str:
    with pytest.raises(ConfigurationError) as raised:
        create_app(**overrides)
    text = str(raised.value)
    assert text.startswith(f"{setting}: "), text
    assert "\n" not in text
    assert raised.value.setting == setting
    return text


def test_issuers_file_missing(tmp_path: Path) -> None:
    text = _refused("CDS_TRUSTED_ISSUERS", auth="jwt", trusted_issuers=tmp_path / "nope.json")
    assert "cannot read" in text


def test_issuers_file_not_json(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text("{issuers: ")
    assert "Invalid JSON" in _refused("CDS_TRUSTED_ISSUERS", auth="jwt", trusted_issuers=path)


def test_issuers_file_with_a_wrong_field(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text('{"issuers": [{"iss": "https://ehr.example.org", "jwks_uri": "https://x"}]}')
    assert "issuers.0.jwks_uri" in _refused("CDS_TRUSTED_ISSUERS", auth="jwt", trusted_issuers=path)


def test_an_empty_issuer_list_with_jwt_does_not_start(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text('{"issuers": []}')
    assert "every call would be refused" in _refused("CDS_TRUSTED_ISSUERS", auth="jwt", trusted_issuers=path)


def test_an_empty_issuer_list_is_fine_with_auth_off(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text('{"issuers": []}')
    create_app(auth="off", trusted_issuers=path, database_url="sqlite://")


@pytest.mark.parametrize("url", ["not a url", "mysql+nodriver://u:secret@h/db", "oracle://u:secret@h/db"])
def test_a_bad_database_url(url: str) -> None:
    text = _refused("CDS_DATABASE_URL", auth="off", database_url=url)
    assert "secret" not in text


def test_an_unreadable_value_set_overlay(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    _refused("CDS_VALUESET_DIR", auth="off", valueset_dir=tmp_path / "file")


def test_a_bad_value_names_its_variable() -> None:
    assert "greater than or equal to 1" in _refused("CDS_RECENT_DAYS", auth="off", recent_days=0)


def test_gunicorn_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    """The Dockerfile runs gunicorn directly: the same mistake is one line there too."""
    path = tmp_path / "issuers.json"
    path.write_text('{"issuers": []}')
    env = {**os.environ, "CDS_AUTH": "jwt", "CDS_TRUSTED_ISSUERS": str(path), "CDS_BIND": "127.0.0.1:0"}
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:cds_service.serving.gunicorn_config"]
    result = subprocess.run(
        [*argv, "cds_service.app:create_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "Error: CDS_TRUSTED_ISSUERS: " in result.stderr
