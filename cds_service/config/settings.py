"""Configuration from the environment (prefix CDS_), validated once at start."""

from __future__ import annotations

import ipaddress
from importlib.resources import files
from pathlib import Path
from typing import Literal

import orjson
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_recent_days() -> int:
    """The clinical default lives with the other thresholds in cards/parameters.json."""
    doc = orjson.loads((files("cds_service.cards") / "parameters.json").read_bytes())
    return int(doc["recentDays"])


class Settings(BaseSettings):
    """Every name here is documented in the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore", frozen=True)

    recent_days: int = Field(
        default_factory=lambda: default_recent_days(),
        ge=1,
        le=3650,
        description="A fracture counts as recent up to this age in days (default: parameters.json).",
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Larger request bodies get 413.")
    auth: Literal["jwt", "off"] = Field(
        "jwt", description="Client authentication: the CDS Hooks JWT; 'off' only by explicit configuration."
    )
    public_base_url: str | None = Field(
        None,
        description="External base URL (behind proxies); used for source.url links. Default: the request's.",
    )
    demo: bool = Field(False, description="Demo conveniences (fixture patients) for local use.")
    log_level: str = Field("INFO", description="Python logging level.")
    fhir_budget_seconds: float = Field(
        2.0, gt=0, le=60, description="Total time for fetching missing data in one hook call."
    )
    allow_http_fhir: bool = Field(
        False, description="Accept a plain-http fhirServer (local sandboxes); otherwise https only."
    )
    fhir_max_pages: int = Field(20, ge=1, le=1000, description="Most Bundle pages read per prefetch key.")
    fhir_max_resources: int = Field(
        10_000, ge=1, description="Most resources read per prefetch key; more is a 'too-large' failure."
    )
    fhir_max_response_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest FHIR response body read; more is 'too-large'."
    )
    fhir_page_size: int = Field(
        200, ge=0, le=10_000, description="_count sent with searches (0: leave it to the server)."
    )
    fhir_max_call_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Most FHIR response bytes read for one hook call, all keys."
    )
    fhir_max_json_containers: int = Field(
        1_000_000,
        ge=1000,
        description="Most JSON arrays and objects in one FHIR response; more is 'too-large'.",
    )
    fhir_allowed_networks: str = Field(
        "",
        description="CIDRs (comma-separated) a fhirServer may resolve to besides public addresses.",
    )
    threads: int = Field(4, ge=1, le=256, description="Request threads per worker (gunicorn gthread).")
    fhir_workers: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Threads fetching for all hook calls of one process; default: threads x prefetch keys.",
    )
    valueset_dir: Path | None = Field(
        None,
        description="Folder of site value-set files (shipped format) extending the shipped sets by id.",
    )
    fixtures_dir: Path | None = Field(
        None,
        description="Demo: folder of scenario folders for the preview page (default: the shipped fixtures).",
    )
    database_url: str = Field(
        "sqlite:///instance/cds.sqlite",
        description="SQLAlchemy URL of the database (cards, feedback, seen JWT ids); SQLite file by default.",
    )
    record_cards: bool = Field(True, description="Record every issued card (no patient data) for analytics.")
    analytics_token: SecretStr | None = Field(
        None, description="Secret for /analytics (Bearer, or Basic password); unset: the page is off (404)."
    )
    trusted_issuers: Path | None = Field(
        None, description="JSON file of the EHRs that may call (iss, jwks_url | jwks, jku_allowlist, tenant)."
    )
    jwt_leeway_seconds: int = Field(30, ge=0, le=60, description="Clock skew tolerated on exp, iat, nbf.")
    jwt_max_lifetime_seconds: int = Field(
        300, ge=1, le=86_400, description="Longest JWT lifetime accepted (exp - iat), plus the leeway."
    )
    jwks_cache_seconds: int = Field(
        3600, ge=0, description="How long fetched JWKS are used before refetching."
    )
    jwks_refresh_min_seconds: int = Field(
        60, ge=0, description="An unknown kid refetches a JWKS at most this often (per URL)."
    )
    ready_requires_database: bool = Field(
        False, description="/readyz fails while the database is away (default: reported, not required)."
    )
    discovery_auth: bool = Field(False, description="Require the JWT for GET /cds-services too.")
    cors_origins: str = Field(
        "",
        description="Comma-separated browser origins allowed to call (e.g. the CDS Hooks sandbox); '*': any.",
    )

    def fhir_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.fhir_allowed_networks.split(",")
            if part.strip()
        )

    @field_validator("fhir_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)  # ValueError names the bad one
        return value

    def allowed_origins(self) -> list[str]:
        """CORS origins; the demo allows any, so the browser-based sandbox can call."""
        given = [o.strip() for o in self.cors_origins.split(",") if o.strip()]
        return given or (["*"] if self.demo else [])
