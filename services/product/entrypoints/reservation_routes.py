"""Stock reservations over HTTP, for orders placed in sync mode (the async saga reserves through
Kafka, see consumers.py). Idempotent per order id, so a retried call never takes stock twice."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from msgspec import Meta

from services.product.domain.reservation import (
    MAX_LINES,
    Line,
    OutOfStock,
    Reservation,
    ReservationError,
    UnknownProduct,
    same_lines,
)
from services.product.entrypoints import state as runtime
from services.product.service_layer import reservations
from services.product.service_layer.unit_of_work import UnitOfWork
from shopstream import contract
from shopstream.guards import require_service
from shopstream.http import Problem, encoded, field_error, strict_body, uuid_param

ProductId = Annotated[str, Meta(examples=["5f0c6a1e-8d2b-4c7a-9e3f-2b1d0a9c8e7f"])]
OrderId = Annotated[str, Meta(examples=["0b7c9f4e-2a51-4d1c-9a3e-6f5d2c1b0a01"])]


class RequestedLine(msgspec.Struct, forbid_unknown_fields=True):
    product_id: ProductId
    quantity: Annotated[int, Meta(ge=1, le=1000, examples=[2])]


class ReservationRequest(msgspec.Struct, forbid_unknown_fields=True):
    order_id: OrderId
    lines: Annotated[list[RequestedLine], Meta(min_length=1, max_length=MAX_LINES)]


class HeldLineView(msgspec.Struct):
    product_id: ProductId
    quantity: Annotated[int, Meta(examples=[2])]
    unit_price_cents: Annotated[int, Meta(examples=[12990])]


class ReservationView(msgspec.Struct):
    order_id: OrderId
    status: Annotated[str, Meta(description="held, released or committed", examples=["held"])]
    lines: list[HeldLineView]


def _uuid(raw: str, field: str) -> str:
    return str(uuid_param(raw, field))


def _known(reservation: Reservation | None, order_id: str) -> Reservation:
    if reservation is None:
        raise Problem(
            404,
            "No reservation",
            f"nothing reserved for order {order_id}",
            [field_error("order_id", "unknown")],
        )
    return reservation


def _view(reservation: Reservation, status: int = 200) -> Response[Any]:
    body = ReservationView(
        reservation.order_id,
        reservation.status,
        [HeldLineView(h.product_id, h.quantity, h.unit_price_cents) for h in reservation.lines],
    )
    for line in reservation.lines:
        runtime.STATE.cache.evict(line.product_id)
    return encoded(msgspec.json.encode(body), status)


@post(
    "/reservations",
    status_code=201,
    responses=contract.problems(
        {409: "more than the available stock, or this order already holds other lines"}
    ),
    summary="Reserve stock for an order (all lines or none)",
)
async def reserve(
    request: Request[Any, Any, Any], data: ReservationRequest
) -> Response[ReservationView]:
    """201 when held now; 200 when this order already holds the same lines; 409 out of stock."""
    data = await strict_body(request, ReservationRequest)
    order_id = _uuid(data.order_id, "order_id")
    lines = [
        Line(_uuid(x.product_id, f"lines[{i}].product_id"), x.quantity)
        for i, x in enumerate(data.lines)
    ]
    index = {line.product_id: i for i, line in enumerate(lines)}
    try:
        async with runtime.STATE.uow() as uow:
            existing = await reservations.find(uow, order_id)
            if existing is not None:
                if not same_lines(existing, lines):
                    raise Problem(
                        409,
                        "Reservation differs",
                        f"order {order_id} already reserved other lines",
                        [field_error("lines", "differ from the order's existing reservation")],
                    )
                return _view(existing, 200)
            held = await reservations.hold(uow, order_id, lines)
    except ReservationError as exc:
        raise Problem(
            400, "Invalid reservation", str(exc), [field_error(f, m) for f, m in exc.errors]
        ) from exc
    except OutOfStock as exc:
        field = f"lines[{index.get(exc.product_id, 0)}].quantity"
        raise Problem(
            409, "Out of stock", str(exc), [field_error(field, "more than the available stock")]
        ) from exc
    except UnknownProduct as exc:
        field = f"lines[{index.get(exc.product_id, 0)}].product_id"
        raise Problem(
            422, "Unknown product", str(exc), [field_error(field, "unknown product")]
        ) from exc
    return _view(held, 201)


@get("/reservations/{order_id:str}", summary="An order's reservation")
async def read_reservation(order_id: str) -> Response[ReservationView]:
    oid = _uuid(order_id, "order_id")
    # a single read needs no transaction: a unit of work joining the bare connection
    async with runtime.STATE.db.acquire() as conn:
        found = await reservations.find(UnitOfWork.joining(conn), oid)
    return _view(_known(found, oid))


@post(
    "/reservations/{order_id:str}/release", status_code=200, summary="Give back what an order holds"
)
async def release(order_id: str) -> Response[ReservationView]:
    """Releases exactly the held lines; a second call releases nothing and says so (no lines)."""
    oid = _uuid(order_id, "order_id")
    async with runtime.STATE.uow() as uow:
        released = await reservations.release(uow, oid)
    return _view(_known(released, oid))


@post(
    "/reservations/{order_id:str}/commit",
    status_code=200,
    summary="The order is confirmed: sell the held stock",
)
async def commit(order_id: str) -> Response[ReservationView]:
    oid = _uuid(order_id, "order_id")
    # a single statement is its own transaction: no BEGIN/COMMIT round trips around it
    async with runtime.STATE.db.acquire() as conn:
        committed = await reservations.commit(UnitOfWork.joining(conn), oid)
    return _view(_known(committed, oid))


# internal: order-service only, by the service credential; the gateway does not route /reservations
ROUTES = [reserve, read_reservation, release, commit]
for _route in ROUTES:
    _route.guards = [*(_route.guards or []), require_service]
