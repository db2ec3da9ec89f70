"""Reading and following orders: one order (optionally long-polled until it changes), its
server-sent updates, a page of orders, and an order's events."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from services.order.adapters import queries
from services.order.domain.state import OrderStatus
from services.order.entrypoints import state as runtime
from services.order.entrypoints.access import caller, customer_filter
from services.order.entrypoints.answers import not_found, order_or_404, own_view, problem_spec, read
from services.order.entrypoints.schemas import EventStream, OrderPage, OrderView
from services.order.entrypoints.views import encode, event_view, order_view
from shopstream.guards import require_user
from shopstream.http import Problem, encoded, field_error, uuid_param

MAX_WAIT_SECONDS = 25.0
"""Longest long-poll: below the gateway's 30 s proxy read timeout."""
POLL_FALLBACK_SECONDS = 1.0
"""Followers re-read at least this often, in case a notification was lost."""
SSE_HEARTBEAT_SECONDS = 10.0
_TERMINAL = {s.value for s in OrderStatus if s.is_terminal}
_STATUSES = [s.value for s in OrderStatus]


async def _changed(order_id: uuid.UUID, known: int | None, wait: float) -> OrderView:
    """The order once its version passes ``known`` (default: the version now), or after ``wait``
    seconds, or at once when it has ended (its status cannot change any more)."""
    deadline = time.monotonic() + wait
    with runtime.STATE.feed.watch(str(order_id)) as changed:
        view = await order_or_404(order_id)
        target = view.version if known is None else known
        while view.version <= target and view.status not in _TERMINAL:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, POLL_FALLBACK_SECONDS))
            changed.clear()
            view = await order_or_404(order_id)
    return view


@get(
    "/orders/{order_id:str}",
    summary="Read an order",
    responses={400: problem_spec("malformed id or query"), 404: problem_spec("no such order")},
    guards=[require_user],
)
async def read_order(
    request: Request[Any, Any, Any],
    order_id: str,
    wait: Annotated[
        float | None,
        Parameter(
            description=f"long-poll: wait up to this many seconds (max {MAX_WAIT_SECONDS:g})"
            " for the order to pass `version`"
        ),
    ] = None,
    version: Annotated[
        int | None, Parameter(description="with wait: the version the client has seen")
    ] = None,
) -> Response[OrderView]:
    """The order with its status history, per-stage timestamps, lines and total. With ``wait``,
    the answer comes as soon as the order changes past ``version`` (default: its version now)."""
    oid = uuid_param(order_id, "order_id")
    if version is not None and version < 0:
        raise Problem(
            400, "Invalid query", "version must be >= 0", [field_error("version", "must be >= 0")]
        )
    if wait is not None and wait != 0 and not 0 < wait <= MAX_WAIT_SECONDS:
        raise Problem(
            400,
            "Invalid query",
            f"wait must be within (0, {MAX_WAIT_SECONDS:g}]",
            [field_error("wait", f"must be within (0, {MAX_WAIT_SECONDS:g}]")],
        )
    view = await own_view(request, oid)
    if wait is None or wait == 0:
        return encoded(encode(view))
    return encoded(encode(await _changed(oid, version, wait)))


@get(
    "/orders/{order_id:str}/updates",
    summary="Follow an order (server-sent events)",
    guards=[require_user],
)
async def order_updates(request: Request[Any, Any, Any], order_id: str) -> ServerSentEvent:
    """Server-sent events: an ``order`` event with the order now and at every change, until
    it ends; a comment every few seconds keeps idle connections open."""
    oid = uuid_param(order_id, "order_id")
    await own_view(request, oid)  # 404 before the stream starts

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        with runtime.STATE.feed.watch(str(oid)) as changed:
            sent = -1
            quiet_since = time.monotonic()
            while True:
                view = await read(oid)
                if view is None:
                    return
                if view.version > sent:
                    sent = view.version
                    quiet_since = time.monotonic()
                    yield ServerSentEventMessage(encode(view).decode(), "order", view.version)
                    if view.status in _TERMINAL:
                        return
                elif time.monotonic() - quiet_since > SSE_HEARTBEAT_SECONDS:
                    quiet_since = time.monotonic()
                    yield ServerSentEventMessage(comment="waiting")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), POLL_FALLBACK_SECONDS)
                changed.clear()

    return ServerSentEvent(
        stream(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@get("/orders", summary="List orders", guards=[require_user])
async def list_orders(
    request: Request[Any, Any, Any],
    customer_id: Annotated[str | None, Parameter(description="only this customer's orders")] = None,
    status: Annotated[str | None, Parameter(description=f"one of {', '.join(_STATUSES)}")] = None,
    limit: Annotated[int, Parameter(description="page size, at most the configured maximum")] = 20,
    cursor: Annotated[str | None, Parameter(description="next_cursor of the previous page")] = None,
) -> Response[OrderPage]:
    """Newest first, keyset-paginated: follow next_cursor until it is null. Customers list only
    their own orders; operators anyone's, or all."""
    customer = uuid_param(customer_id, "customer_id") if customer_id is not None else None
    customer = customer_filter(caller(request), customer)
    if status is not None and status not in _STATUSES:
        raise Problem(
            400,
            "Invalid query",
            f"status must be one of {', '.join(_STATUSES)}",
            [field_error("status", f"must be one of {', '.join(_STATUSES)}")],
        )
    limit_max = runtime.STATE.settings.page_size_max
    if not 1 <= limit <= limit_max:
        raise Problem(
            400,
            "Invalid query",
            f"limit must be within [1, {limit_max}]",
            [field_error("limit", f"must be within [1, {limit_max}]")],
        )
    try:
        after = queries.Cursor.decode(cursor) if cursor else None
    except queries.BadCursor as exc:
        raise Problem(400, "Invalid query", str(exc), [field_error("cursor", str(exc))]) from exc
    async with runtime.STATE.db.acquire() as conn:
        rows, following = await queries.page(
            conn, customer_id=customer, status=status, limit=limit, after=after
        )
    page = OrderPage(
        items=[order_view(r) for r in rows],
        next_cursor=following.encode() if following is not None else None,
    )
    return encoded(encode(page))


@get(
    "/orders/{order_id:str}/events",
    summary="An order's events (its stream in the store)",
    guards=[require_user],
)
async def order_events(request: Request[Any, Any, Any], order_id: str) -> Response[EventStream]:
    oid = uuid_param(order_id, "order_id")
    await own_view(request, oid)
    async with runtime.STATE.db.acquire() as conn:
        rows = await queries.events(conn, oid)
    if not rows:
        raise not_found(oid)
    stream = EventStream(str(oid), rows[-1]["version"], [event_view(r) for r in rows])
    return encoded(encode(stream))
