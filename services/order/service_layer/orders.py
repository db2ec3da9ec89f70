"""The order service's use cases, as the entrypoints call them: place an order, process a sync
order inside its request, resume one whose request died, follow up an async order with no news,
cancel. Placement writes the order
(``Order.place``); every later step is a message through the bus (``messagebus``): the saga decides,
the command table of the order's mode acts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from services.order.adapters import catalog, event_store, metrics
from services.order.adapters.product_client import ProductClient
from services.order.adapters.recorder import KeyTaken, record
from services.order.domain.commands import CancelOrder, FollowUp
from services.order.domain.order import Order
from services.order.domain.partitioning import PartitionStrategy
from services.order.domain.payment import PaymentGateway
from services.order.domain.placement import PlaceOrder, order_id_for
from services.order.domain.saga import Reaction, SagaMessage, waiting_for
from services.order.domain.state import OrderState, OrderStatus
from services.order.domain.values import CancelledBy, ProcessingMode
from services.order.service_layer.handlers import OrderNotFound, SagaCommands
from services.order.service_layer.messagebus import MessageBus

log = logging.getLogger(__name__)

__all__ = ["KeyReused", "OrderNotFound", "OrderService", "Placed"]


class KeyReused(Exception):
    """The Idempotency-Key was used before by this customer for a different request."""


@dataclass(frozen=True)
class Placed:
    order: Order
    replayed: bool = False
    """True when an Idempotency-Key named an order placed before: nothing new was written."""

    @property
    def state(self) -> OrderState:
        return self.order.state


def utcnow() -> datetime:
    return datetime.now(UTC)


class OrderService:
    """Built by ``bootstrap.bootstrap``, the one place that wires the service."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: MessageBus,
        commands: SagaCommands,
        products: ProductClient,
        strategy: PartitionStrategy,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pool = pool
        self.strategy = strategy
        self.bus = bus
        self.commands = commands
        self.products = products
        self.clock = clock

    @property
    def payments(self) -> PaymentGateway:
        return self.commands.payments

    # Placement -----------------------------------------------------------------------------------
    async def unit_prices(self, product_ids: Sequence[UUID]) -> dict[UUID, int]:
        """Prices from the catalog replica; a product it has not heard of is asked for at the
        product service (and remembered), so only products that do not exist are missing."""
        async with self.pool.acquire() as conn:
            known = await catalog.lookup(conn, product_ids)
        unheard = [p for p in product_ids if p not in known]
        if unheard:
            found = await asyncio.gather(*(self.products.product(p) for p in unheard))
            fresh = [entry for entry in found if entry is not None]
            if fresh:
                async with self.pool.acquire() as conn:
                    await catalog.upsert(conn, fresh)
                known.update({e.product_id: e for e in fresh})
        return {
            p: e.price_cents
            for p, e in known.items()
            if e.orderable and e.price_cents is not None
        }

    async def replay(self, command: PlaceOrder) -> Placed | None:
        """The order an Idempotency-Key already names, or None; KeyReused for another request."""
        if command.idempotency_key is None:
            return None
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT order_id, fingerprint FROM idempotency_keys"
                " WHERE customer_id = $1 AND key = $2",
                command.customer_id,
                command.idempotency_key,
            )
            if row is None:
                return None
            if row["fingerprint"] != command.fingerprint():
                raise KeyReused(command.idempotency_key)
            order = await event_store.load(conn, row["order_id"])
        if order is None:  # cannot be: the key and the order commit together
            raise OrderNotFound(row["order_id"])
        return Placed(order, replayed=True)

    async def place(self, command: PlaceOrder) -> Placed:
        """Record a new order (OrderPlaced + projection + outbox + Idempotency-Key, one statement),
        or the order an Idempotency-Key already names. Raises InvalidOrder for unknown products."""
        prices = await self.unit_prices([line.product_id for line in command.lines])
        key = command.idempotency_key
        order_id = order_id_for(command.customer_id, key) if key else uuid4()
        order = Order.place(order_id=order_id, command=command, unit_prices=prices, at=self.clock())
        claim = None if key is None else (command.customer_id, key, command.fingerprint())
        try:
            async with self.pool.acquire() as conn:
                recorded = await record(conn, order, self.strategy, claim)
        except KeyTaken:  # placed before, or by a concurrent request: answer as its retry
            replayed = await self.replay(command)
            if replayed is None:
                raise
            return replayed
        metrics.observe(recorded)
        return Placed(order)

    # Reading ---------------------------------------------------------------------------------------
    async def load(self, order_id: UUID) -> Order | None:
        async with self.pool.acquire() as conn:
            return await event_store.load(conn, order_id)

    # Deciding ----------------------------------------------------------------------------------
    async def decide_now(self, order_id: UUID, message: SagaMessage) -> Reaction | None:
        """The saga's decision about one message, recorded (its commands are not carried out).
        None when the order does not exist."""
        reactions = await self.bus.decide_all([message])
        return reactions[0] if reactions else None

    async def reject(self, order_id: UUID, reason: str) -> None:
        await self.commands.reject(order_id, reason)

    # Sync processing ----------------------------------------------------------------------------
    async def process_sync(self, order: Order) -> OrderState:
        """Run the saga of a sync order inside the request: reserve over HTTP, authorize,
        confirm, compensating over HTTP what a failed step leaves held. Returns the final state."""
        return await self._run_sync(order.id, order.events[0])

    async def resume_sync(self, order_id: UUID, quiet_for: float = 0.0) -> OrderState | None:
        """Carry on with a sync order whose request died half way (a crash, a lost connection):
        the step it waits for is taken again. None when there is nothing to resume, or when the
        order changed less than ``quiet_for`` seconds ago (a request may still hold it: two
        writers taking the same steps at once only meet in deadlocks)."""
        order = await self.load(order_id)
        if order is None or order.state.is_terminal or order.state.mode is not ProcessingMode.SYNC:
            return None
        if (self.clock() - order.last_changed_at).total_seconds() < quiet_for:
            return None
        commands = waiting_for(order.state)
        if not commands:
            return None
        log.warning("resuming sync order %s (%s)", order_id, order.state.status)
        answers = [await self.bus.execute(ProcessingMode.SYNC, c) for c in commands]
        replies = [a for a in answers if a is not None]
        if not replies:
            return await self._final(order_id, None)
        return await self._run_sync(order_id, *replies)

    async def _run_sync(self, order_id: UUID, *messages: SagaMessage) -> OrderState:
        states = await self.bus.handle_all(messages)
        return await self._final(order_id, states.get(order_id))

    async def _final(self, order_id: UUID, final: OrderState | None) -> OrderState:
        # An ended order keeps its status and outcome whatever is recorded later, so the state
        # the last decision left is the answer; otherwise another writer may have moved it on.
        if final is None or not final.is_terminal:
            latest = await self.load(order_id)
            if latest is None:
                raise OrderNotFound(order_id)
            final = latest.state
        if final.status is OrderStatus.CONFIRMED:
            await self.commands.commit(order_id)
        return final

    # Following up --------------------------------------------------------------------------------
    async def follow_up(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderState]:
        """Ask again for what each async order waits for: a stock answer that never came (the
        saga records StockRequestedAgain, published like OrderPlaced), or a payment step the
        saga consumer died in. Every step is idempotent, so an order that was only slow loses
        nothing. The states after, by order."""
        return await self.bus.handle_all([FollowUp(order_id=i) for i in order_ids], resume=True)

    # Cancel ---------------------------------------------------------------------------------------
    async def cancel(self, order_id: UUID, reason: str) -> OrderState:
        """The client cancels: compensate per the saga (sync: the stock back over HTTP; async:
        through Kafka; a payment voided in both). Raises CannotCancel once confirmed or
        rejected, OrderNotFound for an unknown order. Cancelling twice is a no-op."""
        message = CancelOrder(order_id=order_id, reason=reason, by=CancelledBy.CLIENT)
        states = await self.bus.handle_all([message])
        if order_id not in states:
            raise OrderNotFound(order_id)
        return states[order_id]


