"""Who may use the operator console: operators (role ``admin``) of the services' own issuer.

Every view and API of the console is behind ``require_admin``; only its probes (``/health/*``),
``/metrics``, ``/docs``, the vendored scripts under ``/static`` and the sign-in page are not. A
request proves who it is in one of two ways, both checked by the services' ``auth.Verifier`` (same
issuer, audience and JWKS as the services, so a token the services refuse the console refuses):

- ``Authorization: Bearer <token>``: curl, scripts, the tests;
- the session cookie a browser gets from ``/sign-in`` by pasting an operator's token
  (``shopstream token --admin``, or one from the deployment's OIDC provider). The cookie holds that
  token and nothing else: HttpOnly, SameSite=Strict, Secure over HTTPS, and it expires with it.

A browser that is not signed in (or whose token expired) is sent to the sign-in page; an API caller
gets 401 problem+json; a token without the admin role gets 403. Alertmanager's webhook is also
accepted with the credential Alertmanager holds (``runtime.alertmanager``), which opens that route
only. A request that changes something (a POST) and carries no Authorization header must come from
a console page (Origin or Sec-Fetch-Site same-origin): the cookie alone never authorizes a
cross-site form.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import time
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect

from shopstream import auth
from shopstream.config import Settings
from shopstream.http import Problem, field_error
from shopstream_tools.runtime import alertmanager

COOKIE = "shopstream_console"
SIGN_IN = "/sign-in"
MAX_TOKEN_CHARS = 8192
ALERTMANAGER = "alertmanager"
"""``opt`` of a route Alertmanager's credential may call."""
PUBLIC = "public"
"""``opt`` of a route anyone may call (the sign-in and sign-out pages)."""

log = logging.getLogger("shopstream.console.access")
signed_in_as: contextvars.ContextVar[str] = contextvars.ContextVar("signed_in_as", default="")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shopstream console"'}


class SignInRequired(Exception):
    """A browser page asked for without a valid session: answered by a redirect to sign in."""

    def __init__(self, target: str, note: str) -> None:
        super().__init__(note)
        self.target = target
        self.note = note


class Gate:
    """The checks of one console process (its settings' issuer and Alertmanager's credential)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.verifier = auth.Verifier(settings)

    def alertmanager_credential(self) -> str:
        path = alertmanager.credential_path(self.settings)
        return path.read_text().strip() if path.exists() else ""

    def verify(self, token: str) -> auth.Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise auth.Unauthenticated(f"longer than {MAX_TOKEN_CHARS} characters")
        return self.verifier.verify(token)


def _header(connection: ASGIConnection[Any, Any, Any, Any], name: str) -> str | None:
    return connection.headers.get(name)


def is_page(handler: BaseRouteHandler) -> bool:
    return getattr(handler, "media_type", None) == MediaType.HTML


def same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """The request comes from one of the console's own pages (CSRF defence for cookie sessions)."""
    site = _header(connection, "sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = _header(connection, "origin")
    host = _header(connection, "host")
    return bool(origin and host) and urlsplit(origin or "").netloc == host


def refuse_cross_site(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A change asked for by a browser (a form, with the session cookie) must come from a page of
    this console; callers with an Authorization header are not browsers sending a cookie."""
    if connection.scope.get("method") in ("GET", "HEAD", "OPTIONS") or same_origin(connection):
        return
    raise Problem(
        403,
        "Cross-site request refused",
        "a console form must be sent from a console page (Origin or Sec-Fetch-Site)",
        [field_error("Origin", "not this console")],
    )


def next_target(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    path = connection.scope.get("path", "/")
    query = connection.scope.get("query_string", b"").decode("latin-1")
    return path + (f"?{query}" if query else "")


def safe_next(raw: str) -> str:
    """Where to go after signing in: a path of this console, never another site."""
    control = any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw)  # no header splitting
    if not raw.startswith("/") or raw.startswith("//") or "\\" in raw or raw.startswith(SIGN_IN) or control:
        return "/"
    return raw


def _refusal(handler: BaseRouteHandler, connection: Any, detail: str) -> Exception:
    if is_page(handler) and connection.scope.get("method") in ("GET", "HEAD"):
        return SignInRequired(next_target(connection), detail)
    return Problem(401, "Unauthenticated", detail, [field_error("Authorization", detail)], _CHALLENGE)


def make_guard(gate: Gate) -> Any:
    async def require_admin(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if handler.opt.get(PUBLIC):
            refuse_cross_site(connection)
            return
        header = _header(connection, "authorization")
        try:
            token = auth.bearer(header)
        except auth.Unauthenticated as exc:
            raise _refusal(handler, connection, str(exc)) from None
        if token is None:
            token = connection.cookies.get(COOKIE)
            if token:
                refuse_cross_site(connection)
        if not token:
            raise _refusal(handler, connection, "the console is for operators: sign in")
        if handler.opt.get(ALERTMANAGER) and header is not None:
            expected = gate.alertmanager_credential()
            if expected and hmac.compare_digest(expected.encode(), token.encode()):
                return
        try:
            principal = gate.verify(token)
        except auth.Unauthenticated as exc:
            raise _refusal(handler, connection, f"invalid or expired token: {exc}") from None
        if not principal.is_admin:
            raise Problem(
                403,
                "Forbidden",
                "the console is for operators (role admin)",
                [field_error("Authorization", "the token has no admin role")],
            )
        signed_in_as.set(principal.subject)
        connection.scope.setdefault("state", {})["principal"] = principal

    return require_admin


def to_sign_in(_: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    return Redirect(f"{SIGN_IN}?next={quote(exc.target, safe='/')}", status_code=303)


def is_https(request: Request[Any, Any, Any]) -> bool:
    forwarded = (request.headers.get("x-forwarded-proto") or "").split(",")[0].strip()
    return request.url.scheme == "https" or forwarded == "https"


def session_cookie(request: Request[Any, Any, Any], token: str, expires_at: float) -> dict[str, Any]:
    """The Set-Cookie of a new session: lives exactly as long as the token."""
    return {
        "key": COOKIE,
        "value": token,
        "max_age": max(1, int(expires_at - time.time())),
        "path": "/",
        "httponly": True,
        "samesite": "strict",
        "secure": is_https(request),
    }
