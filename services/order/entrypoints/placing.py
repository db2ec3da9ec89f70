"""Placing and cancelling orders: ``POST /orders`` in either mode (see ``app.py``) and
``POST /orders/{id}/cancel``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from services.order.adapters import metrics
from services.order.adapters.backlog import RETRY_AFTER_SECONDS, Backlog
from services.order.adapters.product_client import ProductServiceUnavailable
from services.order.domain.errors import CannotCancel, InvalidOrder
from services.order.domain.placement import parse_place_order
from services.order.domain.values import ProcessingMode
from services.order.entrypoints import state as runtime
from services.order.entrypoints.access import caller, customer_for_new_order
from services.order.entrypoints.answers import (
    answer_sync,
    invalid,
    location,
    not_found,
    order_or_404,
    order_problem,
    own_view,
    problem_spec,
)
from services.order.entrypoints.schemas import CancelRequest, OrderView, PlaceOrderRequest
from services.order.entrypoints.views import encode, recorded_view
from services.order.service_layer.orders import KeyReused, OrderNotFound
from shopstream.failover import is_repeat
from shopstream.guards import require_user
from shopstream.http import Problem, encoded, field_error, strict_body, uuid_param

REPEAT_RESUMES_AFTER_SECONDS = 10.0
"""A client's repeat of an unfinished sync order carries it on only after the order has been this
long without a change: longer than a live request spends on one step (a reservation's 5 s
timeout, the payment provider's timeout times its tries). A duplicate sent while the first
request runs gets 409 "in progress" instead of taking the same steps beside it. A repeat made by
the failover middleware carries it on at once: its first attempt is known to be over."""

PLACE_RESPONSES = {
    201: ResponseSpec(OrderView, description="sync: confirmed; the final order", generate_examples=False),
    400: problem_spec("malformed JSON, wrong types or unknown fields"),
    402: problem_spec("sync: payment declined; the stock was released; the order is cancelled"),
    409: problem_spec(
        "sync: out of stock (the order is rejected, nothing is held), or the"
        " request with this Idempotency-Key is still being processed"
    ),
    422: problem_spec(
        "invalid order: every broken rule, by field; unknown product;"
        " Idempotency-Key reused for a different order"
    ),
    503: problem_spec(
        "the product service could not be reached, or async orders are refused for now: the"
        " saga's backlog is full (order_backlog_limit); retry after Retry-After"
    ),
}


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
        raise invalid(exc) from exc
    if command.mode is ProcessingMode.ASYNC and runtime.STATE.backlog.full:
        raise backlog_full(runtime.STATE.backlog)
    service = runtime.STATE.service
    try:
        placed = await service.place(command)
    except InvalidOrder as exc:
        raise invalid(exc) from exc
    except KeyReused as exc:
        raise Problem(
            422,
            "Idempotency-Key reused",
            f"key {exc} was used before for a different order (other lines or address)",
            [field_error("Idempotency-Key", "already used for a different request")],
        ) from exc
    except ProductServiceUnavailable as exc:
        raise Problem(
            503,
            "Product service unavailable",
            f"cannot check the products: {exc}",
            [field_error("lines", "products could not be checked")],
            headers={"Retry-After": "1"},
        ) from exc
    order_id = placed.state.order_id
    if placed.state.mode is ProcessingMode.ASYNC:
        headers = {
            **location(order_id),
            **({"Idempotent-Replayed": "true"} if placed.replayed else {}),
        }
        view = await order_or_404(order_id) if placed.replayed else recorded_view(placed.state)
        return encoded(encode(view), 202, headers)
    if not placed.replayed:
        final = await service.process_sync(placed.order)
    elif placed.state.is_terminal:
        final = placed.state
    else:  # carried on when no request holds it any more; otherwise 409, still in progress
        quiet_for = 0.0 if is_repeat(request.scope) else REPEAT_RESUMES_AFTER_SECONDS
        final = await service.resume_sync(order_id, quiet_for) or placed.state
    return answer_sync(final, await order_or_404(order_id), placed.replayed)


def backlog_full(backlog: Backlog) -> Problem:
    """Refused before anything is written: a retry with the same Idempotency-Key places it."""
    metrics.SHED.inc()
    return Problem(
        503,
        "Too many orders in flight",
        f"{backlog.in_flight} async orders are still being processed (limit {backlog.limit});"
        " nothing was written, retry after Retry-After",
        [field_error("mode", "async orders are refused until the backlog drains")],
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@post(
    "/orders/{order_id:str}/cancel",
    status_code=200,
    summary="Cancel an order",
    responses={
        404: problem_spec("no such order"),
        409: problem_spec("the order is confirmed or rejected: it cannot be cancelled"),
    },
    guards=[require_user],
)
async def cancel_order(
    request: Request[Any, Any, Any], order_id: str, data: CancelRequest | None = None
) -> Response[OrderView]:
    """Cancel before confirmation: the stock held is released and an authorized payment voided.
    Cancelling a cancelled order answers it again; a confirmed or rejected one answers 409."""
    oid = uuid_param(order_id, "order_id")
    await own_view(request, oid)
    body = CancelRequest()
    if await request.body():
        body = await strict_body(request, CancelRequest)
    if not body.reason.strip():
        raise Problem(
            400,
            "Invalid request",
            "reason must not be blank",
            [field_error("reason", "must not be blank")],
        )
    try:
        await runtime.STATE.service.cancel(oid, body.reason)
    except OrderNotFound:
        raise not_found(oid) from None
    except CannotCancel as exc:
        view = await order_or_404(oid)
        errors = [field_error("status", f"the order is {exc.status.lower()}")]
        return order_problem(409, "Cannot cancel", str(exc), errors, view)
    return encoded(encode(await order_or_404(oid)))
