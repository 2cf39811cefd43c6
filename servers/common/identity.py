"""The embedded identity provider: one signing key pair, its JWKS, and tokens.

On one machine (`make demo`) mlmesh is its own OIDC-less issuer: `ensure_keys` makes an
RSA key pair under the data dir on first run and reuses it afterwards, Envoy's `jwt_authn`
filter checks tokens against `jwks(keys)` (inlined into its config), and the CLI mints
tokens with `mint_token`. In production the same Envoy filter points at the OIDC issuer's
JWKS URI (Keycloak, ...) instead, and this module is not used.

Tokens are RS256 JWTs with a `kid` header (the RFC 7638 thumbprint of the public key) and
the claims `sub`, `org` (the caller's organization id), `iss`, `aud`, `iat`, `exp`, `jti`.
Envoy forwards the verified `org` claim to the servers as the `x-mlmesh-org` header.

This module reads no environment: callers pass the directory and the claims.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_ISSUER = "mlmesh-local"
DEFAULT_AUDIENCE = "mlmesh"
DEFAULT_SUBJECT = "mlmesh-cli"
DEFAULT_TTL_SECONDS = 3600
ALGORITHM = "RS256"
PRIVATE_KEY_FILE = "jwt-signing-key.pem"
ORG_CLAIM = "org"
_RSA_BITS = 2048


@dataclass(frozen=True)
class Keys:
    """The signing key pair of the embedded issuer."""

    private_key: rsa.RSAPrivateKey
    kid: str
    path: Path

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    @property
    def algorithm(self) -> str:
        return ALGORITHM


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _public_jwk_members(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}


def _thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order."""
    canonical = json.dumps(_public_jwk_members(public_key), separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _load(path: Path) -> Keys:
    # The private key must stay private: tighten a file someone loosened.
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an RSA private key")
    return Keys(private_key=key, kid=_thumbprint(key.public_key()), path=path)


def ensure_keys(dir: Path) -> Keys:
    """The key pair under `dir`: made (private key file mode 0600) on first call, reused after.

    Safe when several processes call it at once: the key file is published with a hard
    link, which fails if another process got there first, and then that key is used.
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = dir / PRIVATE_KEY_FILE
    if path.exists():
        return _load(path)

    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    tmp = dir / f".{PRIVATE_KEY_FILE}.{os.getpid()}.{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _load(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return Keys(private_key=key, kid=_thumbprint(key.public_key()), path=path)


def jwks(keys: Keys) -> dict[str, Any]:
    """The public JSON Web Key Set of `keys` (what an OIDC issuer serves at its jwks_uri)."""
    jwk = {**_public_jwk_members(keys.public_key), "kid": keys.kid, "alg": ALGORITHM, "use": "sig"}
    return {"keys": [jwk]}


def mint_token(
    keys: Keys,
    *,
    organization_id: str,
    subject: str = DEFAULT_SUBJECT,
    issuer: str = DEFAULT_ISSUER,
    audience: str | list[str] = DEFAULT_AUDIENCE,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: float | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A signed JWT for `organization_id`, valid for `ttl_seconds` from `now` (default: now).

    A negative `ttl_seconds`, or a `now` in the past, makes an expired token (for tests).
    """
    if not organization_id:
        raise ValueError("organization_id is required")
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": subject,
        ORG_CLAIM: organization_id,
        "iss": issuer,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + int(ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    if extra_claims:
        claims.update(extra_claims)
    return jwt.encode(claims, keys.private_key, algorithm=ALGORITHM, headers={"kid": keys.kid})


def verify_token(
    keys: Keys,
    token: str,
    *,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
    leeway_seconds: int = 60,
) -> dict[str, Any]:
    """The claims of `token` if `keys` signed it for `issuer` and `audience` and it has not expired.

    Raises `jwt.InvalidTokenError` (or a subclass) otherwise. Envoy does this check for every
    request; this is for the CLI (`whoami`) and for tests.
    """
    return jwt.decode(
        token,
        keys.public_key,
        algorithms=[ALGORITHM],
        issuer=issuer,
        audience=audience,
        leeway=leeway_seconds,
        options={"require": ["exp", "iat", "iss", "aud", "sub", ORG_CLAIM]},
    )
