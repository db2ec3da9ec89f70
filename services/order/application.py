"""The order service's use cases (its service layer): place, process, cancel, react to answers.

Each decision is the domain's (``Order.place``, ``saga.react``); this layer loads the order,
records what was decided (events + projection + outbox in one transaction, see unit_of_work) and
carries out the saga's commands the way the order's processing mode says:

- **sync** (inside the request): ReserveStock and ReleaseStock are HTTP calls to the product
  service, AuthorizePayment and VoidPayment calls to the payment port, each answer fed back to
  the saga at once, until the order is confirmed, cancelled or rejected.
- **async** (the saga consumer): ReserveStock and ReleaseStock travel as the recorded OrderPlaced
  and StockReleased events on Kafka; the product service's answer comes back on stock-events
  and ``on_stock_answer`` handles it, the payment included, in the consumer's transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from services.order.adapters import catalog, event_store, metrics
from services.order.adapters.product_client import (
    ProductClient,
    ProductServiceUnavailable,
    Refused,
)
from services.order.adapters.unit_of_work import Recorded, record
from services.order.domain import events as ev
from services.order.domain.commands import (
    AuthorizePayment,
    CancelOrder,
    Command,
    ReleaseStock,
    ReserveStock,
    VoidPayment,
)
from services.order.domain.order import Order
from services.order.domain.partitioning import PartitionStrategy
from services.order.domain.payment import (
    Declined,
    PaymentGateway,
    PaymentResult,
    PaymentUnavailable,
    payment_event,
)
from services.order.domain.placement import PlaceOrder, order_id_for
from services.order.domain.saga import Reaction, SagaMessage, react
from services.order.domain.state import OrderState, OrderStatus
from services.order.domain.values import CancelledBy, ProcessingMode
from shopstream.db import Connection

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 5


class KeyReused(Exception):
    """The Idempotency-Key was used before by this customer for a different request."""


class OrderNotFound(Exception):
    pass


@dataclass(frozen=True)
class Placed:
    order: Order
    replayed: bool = False
    """True when an Idempotency-Key named an order placed before: nothing new was written."""

    @property
    def state(self) -> OrderState:
        return self.order.state


@dataclass
class Observations:
    """The recorded decisions of one use case, for the metrics once they are committed."""

    recorded: list[Recorded] = field(default_factory=list)

    def observe(self) -> None:
        for item in self.recorded:
            metrics.observe(item)
        self.recorded.clear()


def utcnow() -> datetime:
    return datetime.now(UTC)


class OrderService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        products: ProductClient,
        payments: PaymentGateway,
        strategy: PartitionStrategy,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pool = pool
        self.products = products
        self.payments = payments
        self.strategy = strategy
        self.clock = clock

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
        """Record a new order (OrderPlaced + projection + outbox + idempotency key), or the
        order an Idempotency-Key already names. Raises InvalidOrder for unknown products."""
        replayed = await self.replay(command)
        if replayed is not None:
            return replayed
        prices = await self.unit_prices([line.product_id for line in command.lines])
        key = command.idempotency_key
        order_id = order_id_for(command.customer_id, key) if key else uuid4()
        order = Order.place(order_id=order_id, command=command, unit_prices=prices, at=self.clock())
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if key is not None:
                    claimed = await conn.fetchval(
                        "INSERT INTO idempotency_keys (customer_id, key, order_id, fingerprint)"
                        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                        command.customer_id,
                        key,
                        order_id,
                        command.fingerprint(),
                    )
                    if not claimed:
                        raise _Raced()
                recorded = await record(conn, order, self.strategy)
        except _Raced:  # a concurrent request with the same key won: answer as its retry
            replayed = await self.replay(command)
            assert replayed is not None
            return replayed
        metrics.observe(recorded)
        return Placed(order)

    # Reading ---------------------------------------------------------------------------------------
    async def load(self, order_id: UUID) -> Order | None:
        async with self.pool.acquire() as conn:
            return await event_store.load(conn, order_id)

    # Deciding --------------------------------------------------------------------------------------
    async def decide(
        self, conn: Connection, order_id: UUID, message: SagaMessage, observations: Observations
    ) -> Reaction | None:
        """Lock and load the order, let the saga react, record its events (caller's transaction).
        None when the order does not exist."""
        order = await event_store.load(conn, order_id, lock=True)
        if order is None:
            return None
        reaction = react(order, message, self.clock())
        if reaction.events:
            observations.recorded.append(await record(conn, reaction.order, self.strategy))
        return reaction

    async def decide_now(self, order_id: UUID, message: SagaMessage) -> Reaction | None:
        """``decide`` in a transaction of its own, retried when another writer got there first."""
        for attempt in range(1, CONFLICT_RETRIES + 1):
            observations = Observations()
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    reaction = await self.decide(conn, order_id, message, observations)
            except event_store.VersionConflict:
                if attempt == CONFLICT_RETRIES:
                    raise
                continue
            observations.observe()
            return reaction
        raise AssertionError("not reached")

    async def reject(self, order_id: UUID, reason: str) -> OrderState:
        """End a pending order the saga cannot move on (its stock answer cannot be had)."""
        observations = Observations()
        async with self.pool.acquire() as conn, conn.transaction():
            order = await event_store.load(conn, order_id, lock=True)
            if order is None:
                raise OrderNotFound(order_id)
            if not order.state.is_terminal:
                order.reject(reason, self.clock())
                observations.recorded.append(await record(conn, order, self.strategy))
        observations.observe()
        return order.state

    # Payment ----------------------------------------------------------------------------------------
    async def authorize(self, command: AuthorizePayment) -> ev.PaymentAuthorized | ev.PaymentDeclined:
        """The payment port's answer as an event; an unavailable provider counts as a decline
        (the order is cancelled and its stock released rather than left waiting)."""
        result: PaymentResult
        try:
            result = await self.payments.authorize(command.to_request())
        except PaymentUnavailable as exc:
            log.warning("payment for order %s unavailable: %s", command.order_id, exc)
            result = Declined(f"payment provider unavailable: {exc}")
        return payment_event(command.order_id, result, self.clock())

    async def void(self, command: VoidPayment) -> None:
        try:
            await self.payments.void(command.payment_id, command.order_id)
        except PaymentUnavailable:
            log.error("void of payment %s (order %s) failed; the provider's authorization"
                      " expires on its own", command.payment_id, command.order_id)

    # Sync processing ----------------------------------------------------------------------------
    async def process_sync(self, order: Order) -> OrderState:
        """Run the saga of a sync order inside the request: reserve over HTTP, authorize,
        confirm, compensating over HTTP what a failed step leaves held. Returns the final state."""
        first = react(order, order.events[0], self.clock()).commands
        return await self._run_sync(order.id, first)

    async def resume_sync(self, order_id: UUID) -> OrderState | None:
        """Carry on with a sync order whose request died half way (a crash, a lost connection):
        the step it waits for is taken again. Every step is idempotent, so a request that is
        in fact still running does no harm. None when there is nothing to resume."""
        order = await self.load(order_id)
        if order is None or order.state.is_terminal or order.state.mode is not ProcessingMode.SYNC:
            return None
        commands = waiting_for(order.state)
        if not commands:
            return None
        log.warning("resuming sync order %s (%s)", order_id, order.state.status)
        return await self._run_sync(order_id, commands)

    async def _run_sync(self, order_id: UUID, commands: Sequence[Command]) -> OrderState:
        queue: deque[Command] = deque(commands)
        final: OrderState | None = None
        while queue:
            command = queue.popleft()
            answer = await self._execute_sync(command)
            if answer is None:
                continue
            reaction = await self.decide_now(order_id, answer)
            if reaction is None:
                raise OrderNotFound(order_id)
            queue.extend(reaction.commands)
            final = reaction.order.state
        # An ended order keeps its status and outcome whatever is recorded later, so the state
        # the last decision left is the answer; otherwise another writer may have moved it on.
        if final is None or not final.is_terminal:
            latest = await self.load(order_id)
            if latest is None:
                raise OrderNotFound(order_id)
            final = latest.state
        if final.status is OrderStatus.CONFIRMED:
            await self._commit_reservation(order_id)
        return final

    async def _execute_sync(self, command: Command) -> ev.OrderEvent | None:
        if isinstance(command, AuthorizePayment):
            return await self.authorize(command)
        if isinstance(command, VoidPayment):
            await self.void(command)
            return None
        if isinstance(command, ReleaseStock):
            await self._release_over_http(command.order_id)
            return None
        if not isinstance(command, ReserveStock):
            raise TypeError(f"not a command of the saga: {command!r}")
        try:
            answer = await self.products.reserve(command.order_id, command.lines)
        except ProductServiceUnavailable as exc:
            log.error("reservation for order %s failed: %s", command.order_id, exc)
            await self.reject(command.order_id, "product service unavailable")
            # It may have held the stock before the answer was lost: give it back.
            await self._release_over_http(command.order_id)
            return None
        now = self.clock()
        if isinstance(answer, Refused):
            return ev.StockRejected(
                order_id=command.order_id, occurred_at=now, reason=answer.reason,
                product_id=answer.product_id,
            )
        return ev.StockReserved(order_id=command.order_id, occurred_at=now, lines=answer.lines)

    async def _release_over_http(self, order_id: UUID) -> None:
        """Best effort: the recorded StockReleased also reaches the product service on Kafka."""
        try:
            await self.products.release(order_id)
        except ProductServiceUnavailable as exc:
            log.warning("release of order %s over HTTP failed (Kafka will carry it): %s",
                        order_id, exc)

    async def _commit_reservation(self, order_id: UUID) -> None:
        """Best effort: the recorded OrderConfirmed also commits the reservation via Kafka."""
        try:
            await self.products.commit(order_id)
        except ProductServiceUnavailable as exc:
            log.warning("commit of order %s over HTTP failed (Kafka will carry it): %s",
                        order_id, exc)

    # Cancel ---------------------------------------------------------------------------------------
    async def cancel(self, order_id: UUID, reason: str) -> OrderState:
        """The client cancels: compensate per the saga. Raises CannotCancel once confirmed or
        rejected, OrderNotFound for an unknown order. Cancelling twice is a no-op."""
        message = CancelOrder(order_id=order_id, reason=reason, by=CancelledBy.CLIENT)
        reaction = await self.decide_now(order_id, message)
        if reaction is None:
            raise OrderNotFound(order_id)
        state = reaction.order.state
        for command in reaction.commands:
            if isinstance(command, VoidPayment):
                await self.void(command)
            elif isinstance(command, ReleaseStock) and state.mode is ProcessingMode.SYNC:
                await self._release_over_http(order_id)
        return state

    # Async processing -------------------------------------------------------------------------
    async def on_stock_answer(
        self, conn: Connection, message: ev.StockReserved | ev.StockRejected, observations: Observations
    ) -> OrderState | None:
        """The product service's answer to an async order, in the consumer's transaction: record
        it and carry out what the saga decides (the payment, inline). Redelivery-safe: the saga
        ignores a second answer, and the payment is idempotent per order."""
        reaction = await self.decide(conn, message.order_id, message, observations)
        if reaction is None:
            return None
        state = reaction.order.state
        queue: deque[Command] = deque(reaction.commands)
        while queue:
            command = queue.popleft()
            if isinstance(command, AuthorizePayment):
                answer = await self.authorize(command)
                following = await self.decide(conn, message.order_id, answer, observations)
                if following is not None:
                    state = following.order.state
                    queue.extend(following.commands)
            elif isinstance(command, VoidPayment):
                await self.void(command)
            # ReserveStock and ReleaseStock: the recorded OrderPlaced / StockReleased carry them.
        return state


def waiting_for(state: OrderState) -> tuple[Command, ...]:
    """The step a non-terminal order waits for, as the saga's command (empty: none pending)."""
    if state.is_terminal or state.compensating:
        return ()
    if state.status is OrderStatus.PENDING and not state.reserved:
        return (ReserveStock(order_id=state.order_id, lines=state.items),)
    if state.status is OrderStatus.STOCK_RESERVED and state.payment_id is None:
        return (AuthorizePayment(order_id=state.order_id, customer_id=state.customer_id,
                                 amount_cents=state.total_cents),)
    return ()


class _Raced(Exception):
    """A concurrent request claimed the same Idempotency-Key first."""
