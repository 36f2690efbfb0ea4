"""The one place that decides which requests need a JWT, checks it, and answers a bare 401.

Every path needs a JWT except those listed in OPEN_PATHS (and discovery unless CDS_DISCOVERY_AUTH).
The audience a token must name is the endpoint's external URL: `{CDS_PUBLIC_BASE_URL}{path}`, i.e.
`{base}/cds-services/{id}` for a hook and `{base}/cds-services/{id}/feedback` for feedback.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request

from cds_service.auth.jwks import JwksCache
from cds_service.auth.replay import ReplayCache
from cds_service.auth.token import AuthError, TokenVerifier
from cds_service.config.settings import Settings
from cds_service.store.database import Database, replay_database_for
from cds_service.web.urls import base_url

log = logging.getLogger("cds_service.auth")

OPEN_PATHS = frozenset(
    {
        "/",  # preview page
        "/healthz",
        "/readyz",
        "/metrics",
        "/rationale",  # the page every card links to, opened by clinicians' browsers
        "/openapi.json",
        "/analytics",  # guarded by its own token (CDS_ANALYTICS_TOKEN)
    }
)
DISCOVERY_PATH = "/cds-services"


def needs_jwt(path: str, method: str, settings: Settings) -> bool:
    if settings.auth == "off" or method == "OPTIONS":  # CORS preflights carry no credentials
        return False
    if path == DISCOVERY_PATH:
        return settings.discovery_auth
    return path not in OPEN_PATHS


def audience(settings: Settings) -> str:
    """The URL the client called: what a CDS client puts in the token's `aud`."""
    return base_url(settings) + request.path


def unauthorized() -> Response:
    return Response(status=401, headers={"WWW-Authenticate": "Bearer"})


def install_jwt_guard(app: Flask, settings: Settings, verifier: TokenVerifier | None) -> None:
    @app.before_request
    def require_jwt() -> Response | None:
        if not needs_jwt(request.path, request.method, settings):
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            if verifier is None:
                raise AuthError("no trusted issuers configured")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("no bearer token")
            g.caller = verifier.verify(token.strip(), audience(settings))
        except AuthError as error:
            log.warning(
                "authentication refused",
                extra={"reason": error.reason, "iss": (error.issuer or "")[:200], "path": request.path[:200]},
            )
            return unauthorized()
        return None


def build_verifier(settings: Settings, database: Database) -> TokenVerifier:
    from cds_service.config.checks import trusted_issuers  # one-line errors naming the setting

    return TokenVerifier(
        issuers=trusted_issuers(settings),
        jwks=JwksCache(
            ttl_seconds=settings.jwks_cache_seconds, min_refresh_seconds=settings.jwks_refresh_min_seconds
        ),
        first_use=ReplayCache(replay_database_for(database)).first_use,
        leeway_seconds=settings.jwt_leeway_seconds,
        max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
    )


def install_auth(app: Flask, settings: Settings, database: Database) -> None:
    """JWT checks for every non-open path (nothing when CDS_AUTH=off); a bad config fails at start."""
    verifier = build_verifier(settings, database) if settings.auth == "jwt" else None
    install_jwt_guard(app, settings, verifier)
