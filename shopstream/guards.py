"""Litestar guards for the rules of docs/security.md: who may call which route.

``authenticate`` runs on every route of every service: a request without a token is anonymous, a
request with a token that does not verify is refused (401), so nothing downstream, the gateway's
per-principal rate limit included, ever trusts a token the service has not checked.

The guards are coroutines on purpose: Litestar runs a plain-function guard in a worker thread,
which cost 80 us of CPU per request; a coroutine costs next to nothing (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from shopstream import auth
from shopstream.config import Settings
from shopstream.http import Problem, field_error

_VERIFIER: auth.Verifier | None = None
_SERVICE_CREDENTIAL: str | None = None
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shopstream"'}


def _verifier() -> auth.Verifier:
    global _VERIFIER
    if _VERIFIER is None:
        _VERIFIER = auth.Verifier(Settings.from_env())
    return _VERIFIER


def configure(settings: Settings) -> None:
    """Use these settings' issuer (the app's factory calls this; tests may too)."""
    global _VERIFIER, _SERVICE_CREDENTIAL
    _VERIFIER = auth.Verifier(settings)
    _SERVICE_CREDENTIAL = auth.service_credential(settings)


def unauthenticated(detail: str) -> Problem:
    return Problem(
        401, "Unauthenticated", detail, [field_error("Authorization", detail)], headers=_CHALLENGE
    )


def _header(connection: ASGIConnection[Any, Any, Any, Any], name: bytes) -> str | None:
    """One header straight from the ASGI scope: cheaper than building Litestar's Headers."""
    for key, value in connection.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> auth.Principal | None:
    """The verified caller, None for anonymous; 401 for a token that does not verify."""
    state = connection.scope.setdefault("state", {})
    if "principal" in state:
        return state["principal"]
    try:
        found = verified(_header(connection, b"authorization"))
    except auth.Unauthenticated as exc:
        raise unauthenticated(f"invalid bearer token: {exc}") from None
    state["principal"] = found
    return found


def verified(authorization: str | None) -> auth.Principal | None:
    """The caller an ``Authorization`` header names, None for none; raises auth.Unauthenticated."""
    token = auth.bearer(authorization)
    return None if token is None else _verifier().verify(token)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    principal(connection)


def signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> auth.Principal:
    found = principal(connection)
    if found is None:
        raise unauthenticated("this operation needs a bearer token")
    return found


async def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    signed_in(connection)


async def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not signed_in(connection).is_admin:
        raise Problem(
            403,
            "Forbidden",
            "this operation is for operators (role admin)",
            [field_error("Authorization", "the token has no admin role")],
        )


async def require_service(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Internal APIs: only callers holding the service credential (order-service)."""
    global _SERVICE_CREDENTIAL
    if _SERVICE_CREDENTIAL is None:
        _SERVICE_CREDENTIAL = auth.service_credential(Settings.from_env())
    offered = _header(connection, auth.SERVICE_HEADER.lower().encode())
    if not auth.valid_service_credential(_SERVICE_CREDENTIAL, offered):
        raise Problem(
            401,
            "Unauthenticated",
            f"internal API: send the service credential in {auth.SERVICE_HEADER}",
            [field_error(auth.SERVICE_HEADER, "missing or wrong")],
        )
