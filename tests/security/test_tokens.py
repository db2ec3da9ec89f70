"""The token checks of shopstream.auth, against a real key made by the local issuer."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.utils import base64url_encode

from shopstream import auth
from shopstream.config import Settings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=str(tmp_path), auth_leeway_seconds=5)
    auth.ensure_local_issuer(s)
    return s


def test_a_minted_customer_token_verifies_with_subject_and_role(settings: Settings) -> None:
    customer = str(uuid.uuid4())
    who = auth.Verifier(settings).verify(auth.customer_token(settings, customer))
    assert who.subject == customer
    assert who.roles == {auth.CUSTOMER}
    assert not who.is_admin
    assert auth.Verifier(settings).verify(auth.admin_token(settings)).is_admin


def test_the_key_files_are_private(settings: Settings) -> None:
    assert (settings.data_path / "auth" / "issuer-key.pem").stat().st_mode & 0o077 == 0
    assert settings.service_token_path.stat().st_mode & 0o077 == 0


def _claims(settings: Settings, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": "x",
        "iat": now,
        "exp": now + 60,
        "roles": ["admin"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(settings: Settings, claims: dict[str, object]) -> str:
    key = (settings.data_path / "auth" / "issuer-key.pem").read_bytes()
    kid = jwt.get_unverified_header(auth.admin_token(settings))["kid"]
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"exp": int(time.time()) - 60},  # beyond the 5 s leeway
        {"exp": None},
        {"sub": None},
    ],
)
def test_wrong_or_missing_claims_are_refused(settings: Settings, changes: dict) -> None:
    with pytest.raises(auth.Unauthenticated):
        auth.Verifier(settings).verify(_signed(settings, _claims(settings, **changes)))


def test_expiry_within_the_leeway_is_accepted(settings: Settings) -> None:
    token = _signed(settings, _claims(settings, exp=int(time.time()) - 2))
    assert auth.Verifier(settings).verify(token).is_admin


def test_forged_unsigned_and_symmetric_tokens_are_refused(settings: Settings) -> None:
    claims = _claims(settings)
    kid = jwt.get_unverified_header(auth.admin_token(settings))["kid"]
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims, other_key, algorithm="ES256", headers={"kid": kid})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    # the classic confusion: HS256 "signed" with the public key as the shared secret
    public = (settings.data_path / "auth" / "jwks.json").read_bytes()
    signing_input = b".".join(
        base64url_encode(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    )
    mac = hmac.new(public, signing_input, hashlib.sha256).digest()
    hmac_confused = (signing_input + b"." + base64url_encode(mac)).decode()
    verifier = auth.Verifier(settings)
    for token in (forged, unsigned, hmac_confused, "not-a-jwt", ""):
        with pytest.raises(auth.Unauthenticated):
            verifier.verify(token)


def test_a_cached_token_still_expires(settings: Settings) -> None:
    verifier = auth.Verifier(Settings(data_dir=settings.data_dir, auth_leeway_seconds=0))
    token = _signed(settings, _claims(settings, exp=int(time.time()) + 1))
    verifier.verify(token)
    time.sleep(2.1)
    with pytest.raises(auth.Unauthenticated):
        verifier.verify(token)


def test_the_cache_is_bounded(settings: Settings) -> None:
    verifier = auth.Verifier(Settings(data_dir=settings.data_dir, auth_cache_entries=3))
    for i in range(10):
        verifier.verify(auth.customer_token(settings, f"c{i}"))
    assert len(verifier._cache) == 3


def test_bearer_header_parsing() -> None:
    assert auth.bearer(None) is None
    assert auth.bearer("Bearer abc") == "abc"
    with pytest.raises(auth.Unauthenticated):
        auth.bearer("Basic dXNlcjpwYXNz")


def test_service_credential_comparison(settings: Settings) -> None:
    secret = auth.service_credential(settings)
    assert len(secret) >= 32
    assert auth.valid_service_credential(secret, secret)
    assert not auth.valid_service_credential(secret, secret[:-1] + "x")
    assert not auth.valid_service_credential(secret, None)
    assert not auth.valid_service_credential("", "")


def test_a_service_credential_from_a_secret_store_wins_over_the_file(settings: Settings) -> None:
    """Kubernetes and ECS hand the credential over as SHOPSTREAM_SERVICE_TOKEN (from a Secret, or
    Secrets Manager); locally it is the file the issuer made."""
    from_file = auth.service_credential(settings)
    given = dataclasses.replace(settings, service_token="from-the-secret-store\n")
    assert auth.service_credential(given) == "from-the-secret-store" != from_file
    assert Settings.from_env({"SHOPSTREAM_SERVICE_TOKEN": "s3cret"}).service_token == "s3cret"


def test_an_oidc_providers_rs256_token_verifies_and_names_its_groups(tmp_path: Path) -> None:
    """An external issuer as Cognito signs: RS256, its groups in cognito:groups."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "pool-key-1", "use": "sig", "alg": "RS256"})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    settings = Settings(data_dir=str(tmp_path), auth_issuer="https://idp.example/pool",
                        auth_audience="app-client", auth_jwks_url=str(tmp_path / "jwks.json"),
                        auth_admin_claim="cognito:groups")  # fmt: skip
    now = int(time.time())
    claims = {"iss": "https://idp.example/pool", "aud": "app-client", "sub": "u-1", "iat": now,
              "exp": now + 60, "cognito:groups": ["admin"]}  # fmt: skip
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "pool-key-1"})
    who = auth.Verifier(settings).verify(token)
    assert who.subject == "u-1" and who.is_admin
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()).encode()
    confused = jwt.encode(claims, hmac.new(b"x", b"", hashlib.sha256).digest() + public,
                          algorithm="HS256", headers={"kid": "pool-key-1"})  # fmt: skip
    with pytest.raises(auth.Unauthenticated):
        auth.Verifier(settings).verify(confused)
