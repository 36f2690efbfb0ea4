"""Start-up checks: a configuration mistake stops the service with one line naming the setting.

A service that starts with a configuration refusing every call (no trusted issuer, an unreadable
issuers file) looks healthy to an orchestrator and fails every clinician; it must not start.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from cds_service.auth.issuers import TrustedIssuer, load_issuers
from cds_service.config.settings import Settings
from cds_service.core.terminology import Terminology, load_terminology


class ConfigurationError(RuntimeError, ValueError):
    """One line, starting with the environment variable at fault.

    A RuntimeError so that gunicorn, loading the app in its master, prints the message (not a
    traceback) and exits non-zero; a ValueError because it is a bad value.
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {problem}")


def _first_error(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid"))
    return f"{where}: {message}" if where else message


def load_settings(overrides: Mapping[str, Any] | None = None, base: Settings | None = None) -> Settings:
    """Settings from the environment (and overrides); a bad value names its variable."""
    try:
        settings = base or Settings()
        if overrides:
            settings = Settings.model_validate({**settings.model_dump(), **overrides})
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "settings"
        raise ConfigurationError(f"CDS_{field.upper()}", str(first.get("msg", "invalid"))) from None
    return settings


def trusted_issuers(settings: Settings) -> Mapping[str, TrustedIssuer]:
    """The issuers file of CDS_AUTH=jwt, read and checked: unreadable, malformed or empty is fatal."""
    path = settings.trusted_issuers
    if path is None:
        raise ConfigurationError(
            "CDS_TRUSTED_ISSUERS",
            "CDS_AUTH=jwt needs CDS_TRUSTED_ISSUERS (a JSON file of trusted EHRs); see README",
        )
    try:
        issuers = load_issuers(path)
    except OSError as error:
        raise ConfigurationError("CDS_TRUSTED_ISSUERS", f"{path}: cannot read ({error.strerror})") from None
    except pydantic.ValidationError as error:
        raise ConfigurationError("CDS_TRUSTED_ISSUERS", f"{path}: {_first_error(error)}") from None
    except ValueError as error:
        raise ConfigurationError("CDS_TRUSTED_ISSUERS", str(error)) from None
    if not issuers:
        raise ConfigurationError(
            "CDS_TRUSTED_ISSUERS",
            f"{path}: no issuers listed, so with CDS_AUTH=jwt every call would be refused",
        )
    return issuers


def check_database_url(url: str) -> None:
    """A URL SQLAlchemy cannot use is a configuration error; a database that is away is not (it is
    retried and /readyz says so). The URL is never repeated: it may hold a password."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError, ImportError):
        raise ConfigurationError(
            "CDS_DATABASE_URL",
            "not a database URL this service can use "
            "(expected sqlite:///path/to/file.sqlite or postgresql+psycopg://user:pass@host/db)",
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            "CDS_DATABASE_URL", f"unsupported database {parsed.get_backend_name()} (sqlite or postgresql)"
        )


def check_valueset_dir(folder: Path | None) -> None:
    if folder is None:
        return
    if not folder.is_dir():
        raise ConfigurationError("CDS_VALUESET_DIR", f"{folder}: not a readable folder")
    try:
        next(iter(folder.iterdir()), None)
    except OSError as error:
        raise ConfigurationError("CDS_VALUESET_DIR", f"{folder}: cannot read ({error.strerror})") from None


def site_terminology(settings: Settings) -> Terminology:
    """Shipped value sets plus the site's (CDS_VALUESET_DIR); a bad site file stops the start."""
    check_valueset_dir(settings.valueset_dir)
    try:
        return load_terminology(site_folder=settings.valueset_dir)
    except (ValueError, OSError) as error:
        raise ConfigurationError("CDS_VALUESET_DIR", str(error)) from None


def preflight(settings: Settings) -> Terminology:
    """Every start-up check that needs no running database, in the order a reader fixes them."""
    check_database_url(settings.database_url)
    terminology = site_terminology(settings)
    if settings.auth == "jwt":
        trusted_issuers(settings)
    return terminology


def safe_database_url(url: str) -> str:
    """For banners: the URL with any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable)"
