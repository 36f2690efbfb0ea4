"""Configuration from the environment (prefix CDS_), validated once at start."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every name here is documented in the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore", frozen=True)

    recent_days: int = Field(
        60, ge=1, le=3650, description="A fracture counts as recent up to this age in days."
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Larger request bodies get 413.")
    auth: Literal["off"] = Field("off", description="Client authentication; only 'off' exists so far.")
    public_base_url: str | None = Field(
        None,
        description="External base URL (behind proxies); used for source.url links. Default: the request's.",
    )
    demo: bool = Field(False, description="Demo conveniences (fixture patients) for local use.")
    log_level: str = Field("INFO", description="Python logging level.")
    database_url: str = Field(
        "sqlite:///instance/cds.sqlite",
        description="SQLAlchemy URL of the database (cards, feedback, seen JWT ids); SQLite file by default.",
    )
    record_cards: bool = Field(True, description="Record every issued card (no patient data) for analytics.")
    analytics_token: SecretStr | None = Field(
        None, description="Secret for /analytics (Bearer, or Basic password); unset: the page is off (404)."
    )
