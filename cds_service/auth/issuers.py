"""The trusted issuers file (CDS_TRUSTED_ISSUERS): which EHRs may call us, and where their keys are."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrustedIssuer(BaseModel):
    """One EHR: its `iss`, and its keys as a JWKS URL, a static JWKS, or `jku` URLs it may name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    jku_allowlist: tuple[str, ...] = ()
    tenant: str | None = None
    fhir_servers: tuple[str, ...] | None = None
    """When given: the only fhirServer origins (scheme://host[:port]) this issuer's calls may name."""

    @model_validator(mode="after")
    def _has_keys(self) -> TrustedIssuer:
        if self.jwks_url is None and self.jwks is None and not self.jku_allowlist:
            raise ValueError(f"issuer {self.iss}: give jwks_url, jwks or jku_allowlist")
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError(f"issuer {self.iss}: jwks must be {{'keys': [...]}}")
        for url in (self.jwks_url, *self.jku_allowlist):
            if url is not None and not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
                raise ValueError(f"issuer {self.iss}: key URLs must be https ({url})")
        for server in self.fhir_servers or ():
            if not server.startswith(("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")):
                raise ValueError(f"issuer {self.iss}: fhir_servers must be https origins ({server})")
        return self


class IssuerFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuers: list[TrustedIssuer]


def load_issuers(path: Path) -> Mapping[str, TrustedIssuer]:
    """Read and validate the file once at start; a mistake stops the service with a clear message."""
    parsed = IssuerFile.model_validate_json(path.read_bytes())
    found = {issuer.iss: issuer for issuer in parsed.issuers}
    if len(found) != len(parsed.issuers):
        raise ValueError(f"{path}: an issuer is listed twice")
    return found
