"""A request that is safe to repeat waits out a PostgreSQL failover instead of failing.

In the HA profile the primary can die under a request (kill -9, a lost machine); its standby is
promoted within seconds and the pools' next connections reach it (``target_session_attrs`` in the
multi-host URL). A request that met the loss (``db.unavailable``: connection refused or reset, the
server shutting down), or whose transaction PostgreSQL rolled back to break a deadlock (likelier in
the burst after a failover, ``db.rolled_back``), is run again, from its first byte, with a growing
pause, until it succeeds or ``db_failover_seconds`` have passed; only then does the client get the
503.

Repeated only when repeating is harmless: reads (GET, HEAD), a request carrying an Idempotency-Key
(the service answers a repeat with the first result, or carries an unfinished order on), and the
paths a service names as idempotent by themselves (product-service's reservations, keyed by order).
A transaction cut off in its COMMIT may have committed on the standby (synchronous replication):
the repeat finds it through the same keys. Bodies are small (the gateway caps them at 64 KiB) and
are held in memory for the repeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# set by the exception handler on a 503 that means "the database cannot be reached"; never sent
MARKER = b"x-shopstream-database-unavailable"
FIRST_PAUSE, LONGEST_PAUSE = 0.2, 2.0
REPEAT = "shopstream.repeat"
"""Set in the scope of a repeat: the attempt before it has ended (see ``is_repeat``)."""


def is_repeat(scope: Scope) -> bool:
    """True when this request is this middleware's repeat, so its earlier attempt is over and
    holds nothing (an unfinished sync order may be carried on at once)."""
    return bool(scope.get(REPEAT))


def retry_safe(scope: Scope, idempotent_paths: tuple[str, ...]) -> bool:
    method = scope.get("method", "")
    if method in ("GET", "HEAD"):
        return True
    if any(name == b"idempotency-key" for name, _ in scope.get("headers", [])):
        return True
    return bool(idempotent_paths) and str(scope.get("path", "")).startswith(idempotent_paths)


def middleware(
    budget_seconds: float, idempotent_paths: tuple[str, ...] = ()
) -> Callable[[ASGIApp], ASGIApp]:
    def wrap(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            if budget_seconds <= 0 or not retry_safe(scope, idempotent_paths):
                await app(scope, receive, _without_marker(send))
                return
            body = await _whole_body(receive)
            deadline = time.monotonic() + budget_seconds
            pause = FIRST_PAUSE
            attempt = 1
            while True:
                last = time.monotonic() + pause >= deadline
                if await _attempt(app, scope, body, receive, send, hold=not last, repeat=attempt > 1):
                    return
                log.warning("%s %s: database unavailable, repeating (attempt %d) in %.1fs",
                            scope.get("method"), scope.get("path"), attempt, pause)  # fmt: skip
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE, max(deadline - time.monotonic(), 0.05))
                attempt += 1

        return wrapped

    return wrap


def _without_marker(send: Send) -> Send:
    async def forward(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            message["headers"] = [(n, v) for n, v in headers if n != MARKER]
        await send(message)

    return forward


async def _whole_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _attempt(
    app: ASGIApp, scope: Scope, body: bytes, receive: Receive, send: Send, hold: bool, repeat: bool
) -> bool:
    """Run the request once; False when it met an unreachable database and ``hold`` kept its 503
    from the client (to be repeated). The marker header never leaves the service."""
    delivered = False
    held = False

    async def replay() -> Any:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # the client's disconnect, if it comes

    async def forward(message: Any) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            unavailable = any(name == MARKER for name, _ in headers)
            if unavailable:
                message["headers"] = [(n, v) for n, v in headers if n != MARKER]
                held = hold
        if not held:
            await send(message)

    # a fresh copy each time (Litestar caches the parsed request in its scope); what routing
    # learnt (the route template the metrics label by) goes back to the caller's
    attempt: Any = {k: v for k, v in scope.items() if not str(k).startswith("_ls")}
    attempt[REPEAT] = repeat
    await app(attempt, replay, forward)
    scope.update(attempt)
    return not held
