"""EHRs for the auth tests: key pairs, their JWKS, issuer files and CDS Hooks JWTs they sign."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

BASE = "https://cds.example.org"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Ehr:
    """One issuer with one signing key (ES* on the matching curve, RS*/PS* on RSA 2048)."""

    def __init__(
        self, iss: str = "https://ehr.example.org", alg: str = "ES384", kid: str = "ehr-key-1"
    ) -> None:
        self.iss, self.alg, self.kid = iss, alg, kid
        if alg.startswith("ES"):
            curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
            self.private: Any = ec.generate_private_key(curve)
            self.jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwk.update(kid=kid, use="sig", alg=alg)

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def claims(self, aud: str | list[str] | None, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.iss,
            "sub": "ehr-client",
            "aud": aud,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self, aud: str | list[str] | None, headers: dict[str, Any] | None = None, **overrides: Any
    ) -> str:
        header = {"kid": self.kid, "typ": "JWT", **(headers or {})}
        return jwt.encode(self.claims(aud, **overrides), self.private, algorithm=self.alg, headers=header)


def issuer_file(folder: Path, *issuers: dict[str, Any]) -> Path:
    path = folder / "issuers.json"
    path.write_text(json.dumps({"issuers": list(issuers)}))
    return path


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT assembled by hand (for `none` and HMAC-confusion attacks PyJWT will not produce)."""
    head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return head + "." + b64url(signature)
