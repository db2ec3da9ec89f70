"""Signing in to the console from a browser: paste an operator's token, get a session cookie.

The token is what ``shopstream token --admin`` prints (or an OIDC provider's token for an operator
in a deployment); the page never shows it back, the log records who signed in, never with what.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.response import Redirect

from shopstream import auth
from shopstream_tools.console import access
from shopstream_tools.console.layout import STYLE

log = logging.getLogger("shopstream.console.session")
SIGN_OUT = "/sign-out"


def page(note: str = "", target: str = "/", status: int = 200) -> Response[str]:
    warning = f'<p class=bad role=alert>{escape(note)}</p>' if note else ""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Sign in · shopstream console</title><style>{STYLE}</style></head><body>"
        "<header><b>shopstream console</b></header><main><h1>Sign in</h1>"
        "<p>The console is for operators. Paste a token with the <code>admin</code> role: on the "
        "platform's machine <code>.venv/bin/shopstream token --admin</code> prints one (an hour by "
        "default, <code>--ttl</code> seconds), in a deployment your identity provider issues it. "
        "The session lasts as long as the token.</p>"
        f"{warning}"
        f'<form method=post action="{access.SIGN_IN}">'
        f'<input type=hidden name=next value="{escape(target)}">'
        '<p><textarea name=token rows=6 cols=80 autocomplete=off spellcheck=false required '
        'aria-label="operator token" placeholder="eyJ..."></textarea></p>'
        "<p><button>sign in</button></p></form></main></body></html>"
    )
    return Response(body, status_code=status, media_type=MediaType.HTML)


def routes(gate: access.Gate) -> list[Any]:
    public = {access.PUBLIC: True}

    @get(access.SIGN_IN, media_type=MediaType.HTML, include_in_schema=False, opt=public)
    async def sign_in_page(request: Request[Any, Any, Any]) -> Response[str]:
        target = access.safe_next(request.query_params.get("next", "/"))
        return page(target=target)

    @post(access.SIGN_IN, media_type=MediaType.HTML, include_in_schema=False, opt=public)
    async def sign_in(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        target = access.safe_next(str(form.get("next") or "/"))
        token = str(form.get("token") or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            return page("Paste a token.", target, 400)
        try:
            principal = gate.verify(token)
        except auth.Unauthenticated as exc:
            return page(f"That token does not verify: {exc}.", target, 401)
        if not principal.is_admin:
            log.warning("console sign-in refused: %s has no admin role", principal.subject)
            return page("That token has no admin role: the console is for operators.", target, 403)
        log.info("console sign-in: %s until %d", principal.subject, principal.expires_at)
        answer: Response[Any] = Redirect(target, status_code=303)
        answer.set_cookie(**access.session_cookie(request, token, principal.expires_at))
        return answer

    @post(SIGN_OUT, include_in_schema=False, opt=public, status_code=303)
    async def sign_out() -> Response[Any]:
        answer: Response[Any] = Redirect(access.SIGN_IN, status_code=303)
        answer.delete_cookie(access.COOKIE, path="/")
        return answer

    return [sign_in_page, sign_in, sign_out]
