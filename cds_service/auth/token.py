"""Checking one CDS Hooks JWT: asymmetric signature by a trusted issuer's key, audience, lifetime, jti.

Every failure raises AuthError with a short reason for the log; the token itself is never put in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jwt
import orjson

from cds_service.auth.issuers import TrustedIssuer
from cds_service.auth.jwks import JwksCache, keys_by_kid

ALGORITHMS = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
"""Asymmetric only: `none` and every HMAC algorithm are refused before any key is looked at."""
_KEY_TYPE = {"ES": "EC", "RS": "RSA", "PS": "RSA"}
MAX_TOKEN_CHARS = 16 * 1024


@lru_cache(maxsize=256)
def _public_key(jwk_json: bytes, alg: str) -> Any:
    """The key object of one JWK, built once (by its canonical JSON: a rotated key is a new entry)
    instead of on every call; ValueError and PyJWTError as PyJWK raises them."""
    return jwt.PyJWK(orjson.loads(jwk_json), algorithm=alg).key


class AuthError(Exception):
    """Why a request is not authenticated (logged, never sent to the client)."""

    def __init__(self, reason: str, issuer: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.issuer = issuer


@dataclass(frozen=True)
class Caller:
    """Who called, once the JWT checked out."""

    issuer: str
    subject: str | None
    tenant: str | None
    jti: str
    fhir_servers: tuple[str, ...] | None = None
    """The issuer's registered fhirServer origins (None: not restricted)."""


ReplayCheck = Callable[[str, str, datetime], bool]
"""(issuer, jti, expires_at naive UTC) -> True when this jti is seen for the first time."""


@dataclass(frozen=True)
class TokenVerifier:
    issuers: Mapping[str, TrustedIssuer]
    jwks: JwksCache
    first_use: ReplayCheck
    leeway_seconds: int = 30
    max_lifetime_seconds: int = 300

    def _jwk(self, issuer: TrustedIssuer, header: Mapping[str, Any], kid: str) -> Mapping[str, Any] | None:
        """Keys registered out of band win: a static JWKS or the issuer's jwks_url that holds the
        kid is used whatever `jku` says (nothing is fetched for it); a `jku` is fetched only when
        the issuer allowlists it, and refused only when the registered keys do not have the kid."""
        if issuer.jwks is not None:
            found = keys_by_kid(issuer.jwks).get(kid)
            if found is not None:
                return found
        if issuer.jwks_url is not None:
            found = self.jwks.key(issuer.jwks_url, kid)
            if found is not None:
                return found
        jku = header.get("jku")
        if jku is not None:
            if not isinstance(jku, str) or jku not in issuer.jku_allowlist:
                raise AuthError("jku not on the issuer's allowlist", issuer.iss)
            return self.jwks.key(jku, kid)
        if issuer.jwks is None and issuer.jwks_url is None:
            raise AuthError("issuer keys only via jku, and the token has none", issuer.iss)
        return None

    def verify(self, token: str, audience: str) -> Caller:
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("token too long")
        try:  # header and claims in one parse (they are checked against the signature below)
            parsed = jwt.decode_complete(token, options={"verify_signature": False})
            header, unverified = parsed["header"], parsed["payload"]
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthError("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("kid missing")
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthError("issuer not trusted")
        jwk = self._jwk(issuer, header, kid)
        if jwk is None:
            raise AuthError("unknown kid", issuer.iss)
        if jwk.get("kty") != _KEY_TYPE[alg[:2]] or jwk.get("alg", alg) != alg:
            raise AuthError("key does not fit the algorithm", issuer.iss)
        try:
            claims = jwt.decode(
                token,
                _public_key(orjson.dumps(jwk, option=orjson.OPT_SORT_KEYS), alg),
                algorithms=[alg],
                audience=audience,
                issuer=issuer.iss,
                leeway=self.leeway_seconds,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except (jwt.PyJWTError, ValueError, OverflowError, TypeError) as error:
            # Absurd numbers (exp in year 10000, huge or non-finite values) are refusals, not 500s.
            raise AuthError(f"invalid token: {type(error).__name__}", issuer.iss) from None
        return self._caller(issuer, claims)

    def _caller(self, issuer: TrustedIssuer, claims: Mapping[str, Any]) -> Caller:
        jti, exp, tenant = claims["jti"], claims["exp"], claims.get("tenant")
        if not isinstance(jti, str) or not jti or len(jti) > 512:
            raise AuthError("jti must be a non-empty string", issuer.iss)
        if issuer.tenant is not None and tenant != issuer.tenant:
            raise AuthError("tenant does not match the issuer's", issuer.iss)
        iat = claims["iat"]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in (exp, iat)):
            raise AuthError("exp and iat must be finite numbers", issuer.iss)
        if exp - iat > self.max_lifetime_seconds + self.leeway_seconds:
            raise AuthError("token lifetime too long", issuer.iss)
        try:
            expires = datetime.fromtimestamp(float(exp) + self.leeway_seconds, UTC).replace(tzinfo=None)
        except (ValueError, OverflowError, OSError):
            raise AuthError("exp out of range", issuer.iss) from None
        if not self.first_use(issuer.iss, jti, expires):
            raise AuthError("jti replayed", issuer.iss)
        subject = claims.get("sub")
        return Caller(
            issuer.iss,
            subject if isinstance(subject, str) else None,
            tenant if isinstance(tenant, str) else None,
            jti,
            issuer.fhir_servers,
        )
