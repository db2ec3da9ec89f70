"""order-service HTTP API: place, read, list, follow and cancel orders. Run: ``shopstream serve order``.

``POST /orders`` processes an order in one of two modes, chosen per request (``?mode=``, then the
``X-Processing-Mode`` header, then the body's ``mode``) or by ``order_default_mode``:
- async: the order and its OrderPlaced outbox message commit in one transaction; 202 + Location
  at once, and the saga goes on over Kafka (follow it with ``?wait=`` or ``/updates``);
- sync: stock is reserved over HTTP, the payment authorized and the order confirmed inside the
  request; 201 with the final order, or 409 (out of stock) / 402 (payment declined) after what was
  done has been compensated.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from services.order.adapters import queries
from services.order.adapters.product_client import ProductServiceUnavailable
from services.order.domain.errors import CannotCancel, InvalidOrder
from services.order.domain.placement import parse_place_order
from services.order.domain.state import OrderState, OrderStatus, Outcome
from services.order.domain.values import ProcessingMode
from services.order.entrypoints import state as runtime
from services.order.entrypoints.access import (
    caller,
    customer_filter,
    customer_for_new_order,
    may_see,
)
from services.order.entrypoints.schemas import (
    CancelRequest,
    EventStream,
    OrderPage,
    OrderView,
    PlaceOrderRequest,
    ProblemView,
)
from services.order.entrypoints.views import encode, event_view, order_view
from services.order.service_layer.orders import KeyReused, OrderNotFound
from shopstream import db, guards
from shopstream import logging as shop_logging
from shopstream.config import Settings
from shopstream.guards import require_user
from shopstream.http import (
    PROBLEM_JSON,
    Problem,
    create_app,
    encoded,
    field_error,
    strict_body,
    uuid_param,
)

MAX_WAIT_SECONDS = 25.0
"""Longest long-poll: below the gateway's 30 s proxy read timeout."""
POLL_FALLBACK_SECONDS = 1.0
"""Followers re-read at least this often, in case a notification was lost."""
SSE_HEARTBEAT_SECONDS = 10.0
_TERMINAL = {s.value for s in OrderStatus if s.is_terminal}
_STATUSES = [s.value for s in OrderStatus]
_FIELD_NAMES = {"idempotency_key": "Idempotency-Key"}


def _problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(ProblemView, description=description, media_type=PROBLEM_JSON)


PLACE_RESPONSES = {
    201: ResponseSpec(OrderView, description="sync: confirmed; the final order"),
    400: _problem_spec("malformed JSON, wrong types or unknown fields"),
    402: _problem_spec("sync: payment declined; the stock was released; the order is cancelled"),
    409: _problem_spec("sync: out of stock (the order is rejected, nothing is held), or the"
                       " request with this Idempotency-Key is still being processed"),
    422: _problem_spec("invalid order: every broken rule, by field; unknown product;"
                       " Idempotency-Key reused for a different order"),
    503: _problem_spec("the product service could not be reached"),
}


def _invalid(exc: InvalidOrder) -> Problem:
    errors = [field_error(_FIELD_NAMES.get(e.field, e.field), e.message) for e in exc.errors]
    return Problem(422, "Invalid order", str(exc), errors)


def _not_found(order_id: uuid.UUID) -> Problem:
    return Problem(
        404, "Order not found", f"no order {order_id}", [field_error("order_id", "unknown order")]
    )


async def _read(order_id: uuid.UUID) -> OrderView | None:
    async with runtime.STATE.db.acquire() as conn:
        row = await queries.get(conn, order_id)
    return None if row is None else order_view(row)


async def _view(order_id: uuid.UUID) -> OrderView:
    view = await _read(order_id)
    if view is None:
        raise _not_found(order_id)
    return view


async def _own_view(request: Request[Any, Any, Any], order_id: uuid.UUID) -> OrderView:
    """The order, if the caller may see it; another customer's order is a 404 like a missing one."""
    view = await _read(order_id)
    if view is None or not may_see(caller(request), view.customer_id):
        raise _not_found(order_id)
    return view


def _location(order_id: uuid.UUID | str) -> dict[str, str]:
    return {"Location": f"/orders/{order_id}"}


def _order_problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, str]],
    view: OrderView,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """A problem+json that also carries the order it is about (an RFC 9457 extension member)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail, "errors": errors, "order_id": view.id,
                            "order": view}
    return encoded(encode(body), status, {**_location(view.id), **(headers or {})}, PROBLEM_JSON)


def _line_field(state: OrderState, suffix: str) -> str:
    product = state.stock_rejected_product
    for i, line in enumerate(state.lines):
        if line.product_id == product:
            return f"lines[{i}].{suffix}"
    return "lines"


def _answer_sync(state: OrderState, view: OrderView, replayed: bool = False) -> Response[Any]:
    """The answer to a sync order: its final state, or the problem that ended it."""
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    outcome = state.outcome
    if outcome is Outcome.CONFIRMED:
        return encoded(encode(view), 201, {**_location(view.id), **headers})
    if outcome is Outcome.IN_PROGRESS:
        return _order_problem(
            409, "Request in progress",
            "this Idempotency-Key's order is still being processed; follow it at Location",
            [field_error("Idempotency-Key", "the first request with this key has not finished")],
            view, {**headers, "Retry-After": "1"},
        )
    if outcome is Outcome.STOCK_REJECTED:
        reason = state.stock_rejected_reason or "stock rejected"
        if reason == "unknown product":
            errors = [field_error(_line_field(state, "product_id"), "unknown product")]
            return _order_problem(422, "Unknown product", state.reason or reason, errors, view,
                                  headers)
        errors = [field_error(_line_field(state, "quantity"), "more than the available stock")]
        return _order_problem(409, "Out of stock", state.reason or reason, errors, view, headers)
    if outcome is Outcome.PAYMENT_DECLINED:
        errors = [field_error("payment", state.payment_declined_reason or "declined")]
        return _order_problem(402, "Payment declined", state.reason or "payment declined",
                              errors, view, headers)
    if outcome is Outcome.CANCELLED:
        errors = [field_error("status", "the order was cancelled while it was processed")]
        return _order_problem(409, "Order cancelled", state.reason or "cancelled", errors, view,
                              headers)
    if state.reason == "product service unavailable":
        errors = [field_error("lines", "stock could not be reserved; nothing is held")]
        return _order_problem(503, "Product service unavailable", state.reason, errors, view,
                              {**headers, "Retry-After": "1"})
    errors = [field_error("status", state.reason or "rejected")]
    return _order_problem(409, "Order rejected", state.reason or "rejected", errors, view, headers)


@post(
    "/orders",
    status_code=202,
    summary="Place an order",
    description="202 + Location (async), 201 (sync, confirmed), 409 out of stock, 402 payment"
    " declined, 422 invalid order or unknown product. Retry safely with an Idempotency-Key.",
    responses=PLACE_RESPONSES,
    guards=[require_user],
)
async def place_order(
    request: Request[Any, Any, Any],
    data: PlaceOrderRequest,
    mode: Annotated[str | None, Parameter(query="mode", description="sync or async")] = None,
    processing_mode: Annotated[
        str | None, Parameter(header="X-Processing-Mode", description="sync or async")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Parameter(header="Idempotency-Key", description="the same key makes a retry safe"),
    ] = None,
) -> Response[OrderView]:
    data = await strict_body(request, PlaceOrderRequest)
    payload = msgspec.to_builtins(data)
    payload["customer_id"] = customer_for_new_order(caller(request), data.customer_id)
    try:
        command = parse_place_order(
            payload,
            idempotency_key=idempotency_key,
            mode=mode if mode is not None else processing_mode,
            default_mode=runtime.STATE.default_mode,
        )
    except InvalidOrder as exc:
        raise _invalid(exc) from exc
    service = runtime.STATE.service
    try:
        placed = await service.place(command)
    except InvalidOrder as exc:
        raise _invalid(exc) from exc
    except KeyReused as exc:
        raise Problem(
            422, "Idempotency-Key reused",
            f"key {exc} was used before for a different order (other lines or address)",
            [field_error("Idempotency-Key", "already used for a different request")],
        ) from exc
    except ProductServiceUnavailable as exc:
        raise Problem(
            503, "Product service unavailable", f"cannot check the products: {exc}",
            [field_error("lines", "products could not be checked")],
            headers={"Retry-After": "1"},
        ) from exc
    order_id = placed.state.order_id
    if placed.state.mode is ProcessingMode.ASYNC:
        headers = {**_location(order_id), **({"Idempotent-Replayed": "true"} if placed.replayed else {})}
        return encoded(encode(await _view(order_id)), 202, headers)
    final = placed.state if placed.replayed else await service.process_sync(placed.order)
    return _answer_sync(final, await _view(order_id), placed.replayed)


async def _changed(
    order_id: uuid.UUID, known: int | None, wait: float
) -> OrderView:
    """The order once its version passes ``known`` (default: the version now), or after ``wait``
    seconds, or at once when it has ended (its status cannot change any more)."""
    deadline = time.monotonic() + wait
    with runtime.STATE.feed.watch(str(order_id)) as changed:
        view = await _view(order_id)
        target = view.version if known is None else known
        while view.version <= target and view.status not in _TERMINAL:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, POLL_FALLBACK_SECONDS))
            changed.clear()
            view = await _view(order_id)
    return view


@get(
    "/orders/{order_id:str}",
    summary="Read an order",
    responses={400: _problem_spec("malformed id or query"), 404: _problem_spec("no such order")},
    guards=[require_user],
)
async def read_order(
    request: Request[Any, Any, Any],
    order_id: str,
    wait: Annotated[
        float | None,
        Parameter(description=f"long-poll: wait up to this many seconds (max {MAX_WAIT_SECONDS:g})"
                  " for the order to pass `version`"),
    ] = None,
    version: Annotated[
        int | None, Parameter(description="with wait: the version the client has seen")
    ] = None,
) -> Response[OrderView]:
    """The order with its status history, per-stage timestamps, lines and total. With ``wait``,
    the answer comes as soon as the order changes past ``version`` (default: its version now)."""
    oid = uuid_param(order_id, "order_id")
    if version is not None and version < 0:
        raise Problem(400, "Invalid query", "version must be >= 0",
                      [field_error("version", "must be >= 0")])
    if wait is not None and wait != 0 and not 0 < wait <= MAX_WAIT_SECONDS:
        raise Problem(400, "Invalid query", f"wait must be within (0, {MAX_WAIT_SECONDS:g}]",
                      [field_error("wait", f"must be within (0, {MAX_WAIT_SECONDS:g}]")])
    view = await _own_view(request, oid)
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
    await _own_view(request, oid)  # 404 before the stream starts

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        with runtime.STATE.feed.watch(str(oid)) as changed:
            sent = -1
            quiet_since = time.monotonic()
            while True:
                view = await _read(oid)
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
        raise Problem(400, "Invalid query", f"status must be one of {', '.join(_STATUSES)}",
                      [field_error("status", f"must be one of {', '.join(_STATUSES)}")])
    limit_max = runtime.STATE.settings.page_size_max
    if not 1 <= limit <= limit_max:
        raise Problem(400, "Invalid query", f"limit must be within [1, {limit_max}]",
                      [field_error("limit", f"must be within [1, {limit_max}]")])
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


@post(
    "/orders/{order_id:str}/cancel",
    status_code=200,
    summary="Cancel an order",
    responses={
        404: _problem_spec("no such order"),
        409: _problem_spec("the order is confirmed or rejected: it cannot be cancelled"),
    },
    guards=[require_user],
)
async def cancel_order(
    request: Request[Any, Any, Any], order_id: str, data: CancelRequest | None = None
) -> Response[OrderView]:
    """Cancel before confirmation: the stock held is released and an authorized payment voided.
    Cancelling a cancelled order answers it again; a confirmed or rejected one answers 409."""
    oid = uuid_param(order_id, "order_id")
    await _own_view(request, oid)
    body = CancelRequest()
    if await request.body():
        body = await strict_body(request, CancelRequest)
    if not body.reason.strip():
        raise Problem(400, "Invalid request", "reason must not be blank",
                      [field_error("reason", "must not be blank")])
    try:
        await runtime.STATE.service.cancel(oid, body.reason)
    except OrderNotFound:
        raise _not_found(oid) from None
    except CannotCancel as exc:
        view = await _view(oid)
        errors = [field_error("status", f"the order is {exc.status.lower()}")]
        return _order_problem(409, "Cannot cancel", str(exc), errors, view)
    return encoded(encode(await _view(oid)))


@get(
    "/orders/{order_id:str}/events",
    summary="An order's events (its stream in the store)",
    guards=[require_user],
)
async def order_events(request: Request[Any, Any, Any], order_id: str) -> Response[EventStream]:
    oid = uuid_param(order_id, "order_id")
    await _own_view(request, oid)
    async with runtime.STATE.db.acquire() as conn:
        rows = await queries.events(conn, oid)
    if not rows:
        raise _not_found(oid)
    stream = EventStream(str(oid), rows[-1]["version"], [event_view(r) for r in rows])
    return encoded(encode(stream))


async def _startup() -> None:
    await runtime.STATE.start(await db.create_pool(runtime.STATE.settings, "order"))


async def _shutdown() -> None:
    await runtime.STATE.stop()


async def _ready() -> bool:
    return runtime.STATE.feed.listening and await db.reachable(runtime.STATE.pool)


def create(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    shop_logging.configure(f"order-{settings.instance_id}", settings.log_level)
    runtime.STATE = runtime.State(settings)
    guards.configure(settings)
    return create_app(
        "order",
        "shopstream order-service",
        __doc__ or "",
        [place_order, read_order, order_updates, list_orders, cancel_order, order_events],
        ready_check=_ready,
        guards=[guards.authenticate],
        on_startup=[_startup],
        on_shutdown=[_shutdown],
    )
