"""A year of order history, generated the way the services would have written it.

Every order is made by the Order aggregate's own commands (``Order.place``, ``record_stock_*``,
``record_payment_*``, ``confirm``/``cancel``/``reject``), its events are encoded by the event
store's codec, its projection row by ``projection.row_of`` and its Kafka envelopes by the
recorder's ``envelope``: what is loaded decodes, folds and reads back exactly as live data does.

What a real run leaves besides is generated too, within the windows the platform keeps it:
the product service's reservations (committed for a confirmed order, released for a cancelled one)
and refusals (kept for good). No outbox rows (a published event leaves the outbox) and no
processed-event records (the product saga is idempotent by its reservations). The same count, catalog and end time give the same rows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from services.order.adapters import event_store, projection
from services.order.domain.order import Order
from services.order.domain.placement import PlaceOrder
from services.order.domain.values import CancelledBy, LineItem, ProcessingMode, ShippingAddress

SEED = 20261205
YEAR = timedelta(days=365)
_CUSTOMERS = UUID("9b1c2f4e-5a7d-4c1e-8f3a-6d2b0e9c7a51")
_CITIES = [
    ("Berlin", "DE", "10115"),
    ("Paris", "FR", "75001"),
    ("Madrid", "ES", "28001"),
    ("Austin", "US", "73301"),
    ("Leeds", "GB", "LS1 1AA"),
    ("Turin", "IT", "10121"),
]
_STREETS = ["Linden Street", "Harbour Road", "Mill Lane", "Station Square", "Park Avenue"]


@dataclass
class Batch:
    """Rows for each table, in each table's COPY column order (``COLUMNS``)."""

    order_events: list[tuple[object, ...]] = field(default_factory=list)
    orders: list[tuple[object, ...]] = field(default_factory=list)
    order_publications: list[tuple[object, ...]] = field(default_factory=list)
    reservations: list[tuple[object, ...]] = field(default_factory=list)
    reservation_refusals: list[tuple[object, ...]] = field(default_factory=list)


COLUMNS = {
    "order_events": ("order_id", "version", "event_id", "type", "data", "occurred_at",
                     "recorded_at"),
    "orders": projection.COLUMNS,
    "order_publications": ("order_id", "published_at"),
    "reservations": ("order_id", "product_id", "quantity", "unit_price_cents", "status",
                     "created_at", "updated_at"),
    "reservation_refusals": ("order_id", "product_id", "reason", "created_at"),
}  # fmt: skip


@dataclass(frozen=True)
class Windows:
    """The end of the history."""

    until: datetime


def _ms(n: float) -> timedelta:
    return timedelta(milliseconds=n)


def _story(order: Order, rng: random.Random, at: datetime) -> None:
    """The rest of the order's saga after placement: mostly confirmed, some declined or
    out of stock, in the proportions of a lab run with a 5% decline rate."""
    s = order.state
    at += _ms(5 + rng.random() * 20)
    if rng.random() < 0.03:
        order.record_stock_rejected("out of stock", s.lines[0].product_id, at)
        order.reject(f"stock rejected: out of stock (product {s.lines[0].product_id})", at)
        return
    order.record_stock_reserved(s.items, at)
    at += _ms(20 + rng.random() * 80)
    if rng.random() < 0.05:
        order.record_payment_declined("insufficient funds", at)
        order.cancel("payment declined: insufficient funds", CancelledBy.SAGA, at)
        return
    order.record_payment_authorized(f"sim_{rng.getrandbits(96):024x}", s.total_cents, at)
    order.confirm(at)


def _address(rng: random.Random, customer: int) -> ShippingAddress:
    city, country, postal = _CITIES[customer % len(_CITIES)]
    street = _STREETS[customer % len(_STREETS)]
    return ShippingAddress(name=f"Customer {customer}", line1=f"{customer % 200 + 1} {street}",
                           city=city, postal_code=postal, country=country)  # fmt: skip


def _order(
    rng: random.Random, i: int, count: int, catalog: Sequence[tuple[UUID, int]], until: datetime
) -> Order:
    customer = rng.randrange(max(1, count // 10))  # ~10 orders per customer over the year
    picked = rng.sample(range(len(catalog)), min(len(catalog), 1 + int(rng.random() ** 2 * 3)))
    lines = tuple(LineItem(catalog[p][0], 1 + int(rng.random() ** 3 * 3)) for p in picked)
    command = PlaceOrder(
        customer_id=uuid5(_CUSTOMERS, str(customer)), lines=lines,
        shipping_address=_address(rng, customer),
        mode=ProcessingMode.ASYNC if rng.random() < 0.7 else ProcessingMode.SYNC,
    )  # fmt: skip
    # evenly over the year, oldest first, a few seconds of jitter
    at = until - YEAR * ((count - i) / count) + timedelta(seconds=rng.random() * 3)
    prices = {catalog[p][0]: catalog[p][1] for p in picked}
    order = Order.place(order_id=UUID(int=rng.getrandbits(128), version=4), command=command,
                        unit_prices=prices, at=at)  # fmt: skip
    _story(order, rng, at)
    return order


def _add(batch: Batch, order: Order, windows: Windows) -> None:
    state = order.state
    stored = event_store.stored_events(order.id, 0, order.collect_events())
    placed_at = state.timestamps.accepted
    assert placed_at is not None
    for item in stored:
        at = item.event.occurred_at
        batch.order_events.append((order.id, item.version, item.event_id, item.type,
                                   event_store.encode(item.event), at, at))  # fmt: skip
    batch.orders.append(projection.row_of(state))
    batch.order_publications.append((order.id, placed_at + _ms(3)))
    stamps = state.timestamps
    if stamps.stock_reserved is not None:
        status = "released" if state.released else "committed"
        changed = stamps.stock_released or stamps.confirmed or stamps.stock_reserved
        by_product = {line.product_id: line for line in state.lines}
        for held in state.reserved:
            price = by_product[held.product_id].unit_price_cents
            batch.reservations.append((order.id, held.product_id, held.quantity, price, status,
                                       stamps.stock_reserved, changed))  # fmt: skip
    elif stamps.stock_rejected is not None:
        batch.reservation_refusals.append((order.id, state.stock_rejected_product,
                                           state.stock_rejected_reason, stamps.stock_rejected))  # fmt: skip


def batches(
    count: int,
    catalog: Sequence[tuple[UUID, int]],
    windows: Windows,
    size: int = 5000,
    seed: int = SEED,
) -> Iterator[Batch]:
    """``count`` orders over the year before ``windows.until``, ``size`` at a time, oldest first.
    ``catalog``: (product id, price in cents) of the products orders are made of."""
    if not catalog:
        raise ValueError("orders need a catalog: seed products first")
    rng = random.Random(seed)
    batch = Batch()
    for i in range(count):
        _add(batch, _order(rng, i, count, catalog, windows.until), windows)
        if len(batch.orders) >= size:
            yield batch
            batch = Batch()
    if batch.orders:
        yield batch
