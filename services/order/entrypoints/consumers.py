"""order-service's event consumers: ``shopstream consume order``, one process, five tasks.

- **saga** (group ``order-saga``, topic ``stock-events``): the product service's StockReserved /
  StockRejected for async orders, a polled batch at once through the message bus: the saga's
  decisions for the batch in one transaction, then the batch's payments concurrently, then their
  outcomes in one more (``service_layer/messagebus.py``). The saga is idempotent by itself (a
  second answer is ignored, and what the order still waits for is carried out), so no record of
  applied events is kept. ReservationReleased changes nothing: passed over by header.
- **catalog replica** (group ``order-catalog``, topic ``product-events``): version-guarded
  batch upserts of the products the order service validates and prices lines with (shared batch
  consumer: a redelivered event is older than the row and changes nothing).
- **sync recovery**: a sync order whose request died half way (the instance crashed, say) is
  taken up again after ``SYNC_STALE_SECONDS`` without a change, so it still ends.
- **async follow-up**: an async order unchanged for ``saga_follow_up_seconds`` is followed up
  (``OrderService.follow_up``): it asks the product service again for a stock answer that never
  came, or has its payment step carried out again. Whatever was lost on the way (a message, a
  consumer's batch), an accepted order ends. Every process of the group sweeps; the event store's
  version check lets one follow-up of an order through.
- **gauges**: orders by status and mode, from the projection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from services.order.adapters import catalog, event_store, metrics, projection
from services.order.bootstrap import bootstrap
from services.order.domain import events as ev
from services.order.domain.values import LineItem
from services.order.service_layer.orders import OrderService
from shopstream import contracts, db, events, tracing
from shopstream.config import Settings
from shopstream.consumer import BatchApplier, BatchConsumer, Delivery, Poison, run_members
from shopstream.contracts import stock
from shopstream.contracts.topics import PRODUCT_EVENTS, STOCK_EVENTS

log = logging.getLogger(__name__)

SAGA_GROUP = "order-saga"
CATALOG_GROUP = "order-catalog"
GAUGE_SECONDS = 15.0
SYNC_STALE_SECONDS = 60.0
"""A sync request's retries end well within this; an order quiet for longer lost its request."""
SWEEP_SECONDS = 15.0
"""How often the sweep resumes stale sync orders and follows up quiet async ones."""
FOLLOW_UPS_PER_SWEEP = 200
"""Bounds the extra work when a backlog, not a loss, keeps many orders waiting."""
SAGA_BATCH = 500
"""Stock answers decided per transaction (and payments in flight, bounded by the bus)."""


def stock_message(event: events.Event) -> ev.StockReserved | ev.StockRejected | None:
    """The product service's answer (``contracts.stock``) as the order's own event; None for the
    types the saga skips."""
    try:
        answer = contracts.read(STOCK_EVENTS, event)
    except contracts.Unreadable as exc:
        raise Poison(str(exc)) from exc
    if isinstance(answer, stock.StockReserved):
        lines = tuple(LineItem(x.product_id, x.quantity) for x in answer.lines)
        return ev.StockReserved(order_id=answer.order_id, occurred_at=answer.occurred_at, lines=lines)
    if isinstance(answer, stock.StockRejected):
        return ev.StockRejected(order_id=answer.order_id, occurred_at=answer.occurred_at,
                                reason=answer.reason, product_id=answer.product_id)  # fmt: skip
    return None


def saga_applier(service: OrderService) -> BatchApplier:
    async def apply(deliveries: list[Delivery]) -> None:
        messages, spans = [], {}
        for d in deliveries:
            message = stock_message(d.event)
            if message is None:
                continue
            messages.append(message)
            span = tracing.start_consumer_span(d.message, SAGA_GROUP)
            if span is not None:  # the answer continues its order's trace through every step
                spans[message.order_id] = span
        if not messages:
            return
        try:
            await service.bus.handle_all(
                messages, resume=True, around=lambda order_id: tracing.in_span(spans.get(order_id))
            )
        finally:
            for span in spans.values():
                span.end()

    return apply


def _catalog_entry(event: events.Event) -> catalog.CatalogEntry | None:
    try:
        return catalog.entry_of(event)
    except catalog.UnreadableProductEvent as exc:
        raise Poison(str(exc)) from exc  # the batch is split down to it and it is dead-lettered


def catalog_applier(pool: asyncpg.Pool) -> BatchApplier:
    async def apply(deliveries: list[Delivery]) -> None:
        entries = [e for d in deliveries if (e := _catalog_entry(d.event))]
        if entries:
            async with pool.acquire() as conn:
                await catalog.upsert(conn, entries)

    return apply


async def refresh_gauges(pool: asyncpg.Pool, stopping: asyncio.Event) -> None:
    seen: set[tuple[str, str]] = set()
    while not stopping.is_set():
        try:
            rows = await pool.fetch(projection.IN_FLIGHT_BY_STATUS)
            now = {(r["status"], r["mode"]): r["n"] for r in rows}
            for key in seen - now.keys():
                metrics.ORDERS.labels(*key).set(0)
            for key, n in now.items():
                metrics.ORDERS.labels(*key).set(n)
            seen |= now.keys()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("order gauges not refreshed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), GAUGE_SECONDS)


async def recover_sync_orders(service: OrderService, older_than: float) -> int:
    """Resume the stale sync orders once; returns how many were taken up."""
    resumed = 0
    async with service.pool.acquire() as conn:
        stale = await projection.quiet_orders(conn, "sync", older_than, 100)
    for order_id in stale:
        try:
            if await service.resume_sync(order_id) is not None:
                resumed += 1
        except Exception:
            log.exception("sync order %s could not be resumed; next sweep retries", order_id)
    return resumed


async def follow_up_async_orders(service: OrderService, older_than: float) -> int:
    """Follow up the async orders quiet for ``older_than`` seconds; returns how many."""
    async with service.pool.acquire() as conn:
        quiet = await projection.quiet_orders(conn, "async", older_than, FOLLOW_UPS_PER_SWEEP)
    if quiet:
        log.warning("following up %d async orders quiet for %.0f s", len(quiet), older_than)
        await service.follow_up(quiet)
        metrics.FOLLOW_UPS.inc(len(quiet))
    return len(quiet)


async def sweep(
    service: OrderService, stopping: asyncio.Event, follow_up_seconds: float
) -> None:
    """Every SWEEP_SECONDS until ``stopping``: the stale sync orders, then the quiet async ones."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), SWEEP_SECONDS)
        if stopping.is_set():
            return
        try:
            await recover_sync_orders(service, SYNC_STALE_SECONDS)
            await follow_up_async_orders(service, follow_up_seconds)
        except (OSError, asyncpg.PostgresError, event_store.VersionConflict) as exc:
            log.warning("order sweep failed: %s", exc)


async def run(settings: Settings) -> None:
    pool = await db.create_pool(settings, "order", "consume", settings.worker_db_pool_size)
    service = bootstrap(settings, pool)
    consumer = BatchConsumer(
        settings, SAGA_GROUP, [STOCK_EVENTS], saga_applier(service), batch_size=SAGA_BATCH,
        types=["StockReserved", "StockRejected"],
    )
    replica = BatchConsumer(settings, CATALOG_GROUP, [PRODUCT_EVENTS], catalog_applier(pool))
    try:
        await run_members(
            [consumer, replica],
            (lambda stopping: refresh_gauges(pool, stopping),
             lambda stopping: sweep(service, stopping, settings.saga_follow_up_seconds)),
        )  # fmt: skip
    finally:
        await service.products.close()
        await pool.close()
