"""What order-service answers besides the happy path: its problems (RFC 9457, naming the field),
the final answer of a sync order, and the caller's order found or a 404 (another customer's order
is a 404 like a missing one, so ids cannot be probed)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec

from services.order.adapters import queries
from services.order.domain.errors import InvalidOrder
from services.order.domain.state import OrderState, Outcome
from services.order.entrypoints import state as runtime
from services.order.entrypoints.access import caller, may_see
from services.order.entrypoints.schemas import OrderView, ProblemView
from services.order.entrypoints.views import encode, order_view
from shopstream.http import PROBLEM_JSON, Problem, encoded, field_error

_FIELD_NAMES = {"idempotency_key": "Idempotency-Key"}


def problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(
        ProblemView, description=description, media_type=PROBLEM_JSON, generate_examples=False
    )


def invalid(exc: InvalidOrder) -> Problem:
    errors = [field_error(_FIELD_NAMES.get(e.field, e.field), e.message) for e in exc.errors]
    return Problem(422, "Invalid order", str(exc), errors)


def not_found(order_id: uuid.UUID) -> Problem:
    return Problem(
        404, "Order not found", f"no order {order_id}", [field_error("order_id", "unknown order")]
    )


async def read(order_id: uuid.UUID) -> OrderView | None:
    async with runtime.STATE.db.acquire() as conn:
        row = await queries.get(conn, order_id)
    return None if row is None else order_view(row)


async def order_or_404(order_id: uuid.UUID) -> OrderView:
    view = await read(order_id)
    if view is None:
        raise not_found(order_id)
    return view


async def own_view(request: Request[Any, Any, Any], order_id: uuid.UUID) -> OrderView:
    """The order, if the caller may see it; another customer's order is a 404 like a missing one."""
    view = await read(order_id)
    if view is None or not may_see(caller(request), view.customer_id):
        raise not_found(order_id)
    return view


def location(order_id: uuid.UUID | str) -> dict[str, str]:
    return {"Location": f"/orders/{order_id}"}


def order_problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, str]],
    view: OrderView,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """A problem+json that also carries the order it is about (an RFC 9457 extension member)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors,
        "order_id": view.id,
        "order": view,
    }
    return encoded(encode(body), status, {**location(view.id), **(headers or {})}, PROBLEM_JSON)


def _line_field(state: OrderState, suffix: str) -> str:
    product = state.stock_rejected_product
    for i, line in enumerate(state.lines):
        if line.product_id == product:
            return f"lines[{i}].{suffix}"
    return "lines"


def answer_sync(state: OrderState, view: OrderView, replayed: bool = False) -> Response[Any]:
    """The answer to a sync order: its final state, or the problem that ended it."""
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    outcome = state.outcome
    if outcome is Outcome.CONFIRMED:
        return encoded(encode(view), 201, {**location(view.id), **headers})
    if outcome is Outcome.IN_PROGRESS:
        return order_problem(
            409,
            "Request in progress",
            "this Idempotency-Key's order is still being processed; follow it at Location",
            [field_error("Idempotency-Key", "the first request with this key has not finished")],
            view,
            {**headers, "Retry-After": "1"},
        )
    if outcome is Outcome.STOCK_REJECTED:
        reason = state.stock_rejected_reason or "stock rejected"
        if reason == "unknown product":
            errors = [field_error(_line_field(state, "product_id"), "unknown product")]
            return order_problem(
                422, "Unknown product", state.reason or reason, errors, view, headers
            )
        errors = [field_error(_line_field(state, "quantity"), "more than the available stock")]
        return order_problem(409, "Out of stock", state.reason or reason, errors, view, headers)
    if outcome is Outcome.PAYMENT_DECLINED:
        errors = [field_error("payment", state.payment_declined_reason or "declined")]
        return order_problem(
            402, "Payment declined", state.reason or "payment declined", errors, view, headers
        )
    if outcome is Outcome.CANCELLED:
        errors = [field_error("status", "the order was cancelled while it was processed")]
        return order_problem(
            409, "Order cancelled", state.reason or "cancelled", errors, view, headers
        )
    if state.reason == "product service unavailable":
        errors = [field_error("lines", "stock could not be reserved; nothing is held")]
        return order_problem(
            503,
            "Product service unavailable",
            state.reason,
            errors,
            view,
            {**headers, "Retry-After": "1"},
        )
    errors = [field_error("status", state.reason or "rejected")]
    return order_problem(409, "Order rejected", state.reason or "rejected", errors, view, headers)
