"""Who is calling: bearer tokens (ES256 or RS256 JWTs) checked against the issuer's JWKS.

The issuer is configuration: locally the platform's own key (``up`` makes it under
``<data>/auth/``, ``shopstream token`` mints with it), in ECS/EKS any OIDC provider whose
``jwks_uri`` is ``SHOPSTREAM_AUTH_JWKS_URL``. PyJWT with cryptography does the cryptography and the
claim checks (signature, ``iss``, ``aud``, ``exp``/``nbf``/``iat`` with leeway); this module adds
the roles, a cache and the local issuer.

A token checked once is remembered until it expires (bounded LRU keyed by the token string), so a
client that sends the same token on every request pays for one signature check, not one per request.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shopstream.config import Settings

ALGORITHMS = ["ES256", "RS256"]
"""Asymmetric only (the local issuer signs ES256; Cognito and most OIDC providers RS256): a
symmetric HS256 token, signed with a public key as its secret, is refused."""
ADMIN = "admin"
CUSTOMER = "customer"
SERVICE_HEADER = "X-Service-Credential"


class Unauthenticated(Exception):
    """The token is missing, malformed, forged, expired or for someone else."""


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    expires_at: float

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles


def _roles(claims: dict[str, Any], claim: str) -> frozenset[str]:
    value = claims.get(claim, ())
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return frozenset(str(v) for v in value) if isinstance(value, (list, tuple)) else frozenset()


class Verifier:
    """Checks tokens for one issuer and audience; thread-safe, cheap on a repeated token."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.auth_issuer
        self.audience = settings.auth_audience
        self.leeway = settings.auth_leeway_seconds
        self.role_claim = settings.auth_admin_claim
        self.capacity = max(1, settings.auth_cache_entries)
        location = settings.jwks_location
        self._client = (
            jwt.PyJWKClient(location, cache_keys=True, lifespan=300)
            if location.startswith(("http://", "https://"))
            else None
        )
        self._file = None if self._client else Path(location)
        self._file_keys: jwt.PyJWKSet | None = None
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, token: str) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        if self._file_keys is None or kid not in {k.key_id for k in self._file_keys.keys}:
            assert self._file is not None  # re-read: the key may have been rotated
            self._file_keys = jwt.PyJWKSet.from_json(self._file.read_text())
        for key in self._file_keys.keys:
            if key.key_id == kid:
                return key.key
        raise Unauthenticated("token signed by an unknown key")

    def verify(self, token: str) -> Principal:
        now = time.time()
        with self._lock:
            known = self._cache.get(token)
            if known is not None:
                if now <= known.expires_at + self.leeway:
                    self._cache.move_to_end(token)
                    return known
                del self._cache[token]
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except (jwt.PyJWTError, OSError, ValueError) as exc:
            raise Unauthenticated(str(exc) or type(exc).__name__) from None
        principal = Principal(
            str(claims["sub"]), _roles(claims, self.role_claim), float(claims["exp"])
        )
        with self._lock:
            self._cache[token] = principal
            if len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return principal


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header; None when there is none."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be `Bearer <token>`")
    return token.strip()


# The local issuer -------------------------------------------------------------------------------


def _auth_dir(settings: Settings) -> Path:
    return settings.data_path / "auth"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(data)
    tmp.replace(path)


def ensure_local_issuer(settings: Settings) -> None:
    """The local signing key, its JWKS and the service credential, made once under the data folder."""
    folder = _auth_dir(settings)
    key_file = folder / "issuer-key.pem"
    if not key_file.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(key_file, pem)
    if not (folder / "jwks.json").exists():
        loaded = serialization.load_pem_private_key(key_file.read_bytes(), None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(loaded.public_key()))
        jwk.update({"kid": _kid(key_file), "use": "sig", "alg": "ES256"})
        (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}, indent=2))
    if not settings.service_token_path.exists():
        _write_private(settings.service_token_path, secrets.token_urlsafe(32).encode())


def _kid(key_file: Path) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, key_file.read_text()).hex[:16]


def mint(
    settings: Settings,
    subject: str,
    roles: list[str],
    ttl_seconds: int = 3600,
) -> str:
    """A token signed with the local issuer's key (``shopstream token``, the lab, the tests)."""
    key_file = _auth_dir(settings) / "issuer-key.pem"
    now = int(time.time())
    claims = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": subject,
        "iat": now,
        "exp": now + ttl_seconds,
        settings.auth_admin_claim: roles,
    }
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": _kid(key_file)})  # type: ignore[arg-type]


def customer_token(settings: Settings, customer_id: str, ttl_seconds: int = 3600) -> str:
    return mint(settings, customer_id, [CUSTOMER], ttl_seconds)


def admin_token(settings: Settings, ttl_seconds: int = 3600) -> str:
    return mint(settings, "admin", [ADMIN], ttl_seconds)


# The service credential -------------------------------------------------------------------------


def service_credential(settings: Settings) -> str:
    """The credential order-service presents and product-service expects on the internal API:
    the setting when a secret store gave it, else the file (the local issuer makes one)."""
    if settings.service_token:
        return settings.service_token.strip()
    path = settings.service_token_path
    return path.read_text().strip() if path.exists() else ""


def valid_service_credential(expected: str, offered: str | None) -> bool:
    return bool(expected) and offered is not None and hmac.compare_digest(expected, offered)
