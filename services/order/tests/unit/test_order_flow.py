"""The saga end to end, in memory: sync and async processing with fakes for the product service,
the payment provider and the event store; random delivery order, redeliveries and client cancels.

The invariants checked after every run are the consistency promises of the order service:
every order ends settled, compensation releases exactly what was reserved (once), stock is
conserved, nothing is oversold, unusable payments are voided, streams rebuild to the same state.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import pytest

from services.order.adapters.payment_simulator import PaymentSimulator
from services.order.domain import events as ev
from services.order.domain.commands import (
    AuthorizePayment,
    CancelOrder,
    Command,
    ReleaseStock,
    ReserveStock,
    VoidPayment,
)
from services.order.domain.errors import CannotCancel
from services.order.domain.order import Order
from services.order.domain.payment import payment_event
from services.order.domain.saga import react
from services.order.domain.state import OrderStatus, Outcome
from services.order.domain.values import LineItem, ProcessingMode, same_items
from services.order.tests.unit.order_builders import P1, PRICES, T0, at, command

Message = ev.OrderEvent | CancelOrder


class FakeVersionConflict(Exception):
    pass


@dataclass
class FakeEventStore:
    streams: dict[UUID, list[ev.OrderEvent]] = field(default_factory=dict)

    def append(self, order_id: UUID, expected_version: int, events: tuple[ev.OrderEvent, ...]):
        stream = self.streams.setdefault(order_id, [])
        if len(stream) != expected_version:
            raise FakeVersionConflict(f"{order_id}: at {len(stream)}, expected {expected_version}")
        stream.extend(events)

    def load(self, order_id: UUID) -> Order:
        return Order.from_events(self.streams[order_id])


@dataclass
class FakeProductService:
    """Reserves all lines or none, once per order; releases must match the reservation."""

    stock: dict[UUID, int]
    initial: dict[UUID, int] = field(init=False)
    answers: dict[UUID, ev.StockReserved | ev.StockRejected] = field(default_factory=dict)
    reservations: dict[UUID, tuple[LineItem, ...]] = field(default_factory=dict)
    releases: Counter[UUID] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.initial = dict(self.stock)

    def reserve(self, cmd: ReserveStock, now: datetime) -> ev.StockReserved | ev.StockRejected:
        if cmd.order_id in self.answers:  # idempotent per order
            return self.answers[cmd.order_id]
        short = next((i for i in cmd.lines if self.stock[i.product_id] < i.quantity), None)
        answer: ev.StockReserved | ev.StockRejected
        if short is not None:
            answer = ev.StockRejected(order_id=cmd.order_id, occurred_at=now,
                                      reason="insufficient stock", product_id=short.product_id)
        else:
            for item in cmd.lines:
                self.stock[item.product_id] -= item.quantity
            self.reservations[cmd.order_id] = cmd.lines
            answer = ev.StockReserved(order_id=cmd.order_id, occurred_at=now, lines=cmd.lines)
        self.answers[cmd.order_id] = answer
        return answer

    def release(self, cmd: ReleaseStock) -> None:
        assert same_items(cmd.lines, self.reservations[cmd.order_id]), "released != reserved"
        self.releases[cmd.order_id] += 1
        if self.releases[cmd.order_id] == 1:  # a redelivered release changes nothing
            for item in cmd.lines:
                self.stock[item.product_id] += item.quantity


@dataclass
class FakePayments:
    simulator: PaymentSimulator
    authorized: dict[str, UUID] = field(default_factory=dict)
    voided: set[str] = field(default_factory=set)

    def authorize(self, cmd: AuthorizePayment, now: datetime) -> ev.OrderEvent:
        result = self.simulator.decide(cmd.to_request())
        event = payment_event(cmd.order_id, result, now)
        if isinstance(event, ev.PaymentAuthorized):
            self.authorized[event.payment_id] = cmd.order_id
        return event

    def void(self, cmd: VoidPayment) -> None:
        assert cmd.payment_id in self.authorized
        self.voided.add(cmd.payment_id)


@dataclass
class World:
    store: FakeEventStore
    products: FakeProductService
    payments: FakePayments
    clock: Callable[[], datetime]
    refused_cancels: int = 0
    issued_releases: Counter[UUID] = field(default_factory=Counter)
    """ReleaseStock commands the saga decided, per order (deliveries may repeat them)."""

    def handle(self, order_id: UUID, message: Message) -> tuple[Command, ...]:
        order = self.store.load(order_id)
        try:
            reaction = react(order, message, self.clock())
        except CannotCancel:
            self.refused_cancels += 1
            return ()
        self.store.append(order_id, reaction.expected_version, reaction.events)
        self.issued_releases[order_id] += sum(isinstance(c, ReleaseStock) for c in reaction.commands)
        return reaction.commands

    def execute(self, cmd: Command) -> list[Message]:
        now = self.clock()
        match cmd:
            case ReserveStock():
                return [self.products.reserve(cmd, now)]
            case AuthorizePayment():
                return [self.payments.authorize(cmd, now)]
            case ReleaseStock():
                self.products.release(cmd)
            case VoidPayment():
                self.payments.void(cmd)
        return []


def new_world(stock: dict[UUID, int], decline_rate: float, seed: int = 7,
              clock: Callable[[], datetime] = lambda: T0) -> World:
    simulator = PaymentSimulator(decline_rate=decline_rate, seed=seed)
    return World(FakeEventStore(), FakeProductService(dict(stock)), FakePayments(simulator), clock)


def place(world: World, order_id: UUID, lines: tuple[tuple[UUID, int], ...],
          prices: dict[UUID, int], mode: ProcessingMode) -> ev.OrderPlaced:
    order = Order.place(order_id=order_id, command=command(lines, mode=mode), unit_prices=prices,
                        at=world.clock())
    world.store.append(order_id, order.committed_version, order.collect_events())
    placed_event = order.events[0]
    assert isinstance(placed_event, ev.OrderPlaced)
    return placed_event


def run_sync(world: World, order_id: UUID, message: Message) -> None:
    """Sync mode: each command is carried out inline and its answer handled at once."""
    for cmd in world.handle(order_id, message):
        for answer in world.execute(cmd):
            run_sync(world, order_id, answer)


def run_async(world: World, initial: list[tuple[UUID, Message]], rng: random.Random,
              redelivery: float) -> None:
    """Async mode: messages and commands wait in a queue, taken in random order, some twice."""
    queue: list[tuple[UUID, Message | Command]] = list(initial)
    while queue:
        order_id, item = queue.pop(rng.randrange(len(queue)))
        if rng.random() < redelivery:
            queue.append((order_id, item))  # at-least-once: it will come again
        if isinstance(item, Command) and not isinstance(item, CancelOrder):
            queue.extend((order_id, answer) for answer in world.execute(item))
        else:
            queue.extend((order_id, cmd) for cmd in world.handle(order_id, item))


@dataclass
class Scenario:
    stock: dict[UUID, int]
    prices: dict[UUID, int]
    orders: dict[UUID, tuple[tuple[UUID, int], ...]]
    cancels: list[UUID]


def scenario(rng: random.Random, n_orders: int, cancel_rate: float,
             stock_range: tuple[int, int] = (0, 12)) -> Scenario:
    products = [UUID(int=rng.getrandbits(128), version=4) for _ in range(5)]
    orders = {}
    for _ in range(n_orders):
        chosen = rng.sample(products, rng.randint(1, 3))
        orders[UUID(int=rng.getrandbits(128), version=4)] = tuple(
            (p, rng.randint(1, 4)) for p in chosen)
    return Scenario(
        stock={p: rng.randint(*stock_range) for p in products},
        prices={p: rng.randint(0, 5000) for p in products},
        orders=orders,
        cancels=[o for o in orders if rng.random() < cancel_rate],
    )


def check_invariants(world: World, orders: dict[UUID, tuple[tuple[UUID, int], ...]]) -> None:
    products, payments = world.products, world.payments
    sold: Counter[UUID] = Counter()
    for order_id, stream in world.store.streams.items():
        state = Order.from_events(stream).state
        assert state.version == len(stream)
        assert state.is_terminal and state.is_settled, (state.status, state.held)
        reserved = products.reservations.get(order_id)
        if state.status is OrderStatus.CONFIRMED:
            assert reserved is not None and same_items(reserved, state.items)
            assert world.issued_releases[order_id] == products.releases[order_id] == 0
            assert state.payment_id not in payments.voided
            for item in state.items:
                sold[item.product_id] += item.quantity
        else:
            # Compensation released exactly what the product service reserved, exactly once.
            assert world.issued_releases[order_id] == (1 if reserved else 0)
            assert bool(products.releases[order_id]) == bool(reserved)
            if reserved:
                assert same_items(state.released, reserved)
    for product, initial in products.initial.items():
        assert products.stock[product] == initial - sold[product] >= 0
    for payment_id, order_id in payments.authorized.items():
        confirmed = world.store.load(order_id).state
        kept = confirmed.status is OrderStatus.CONFIRMED and confirmed.payment_id == payment_id
        assert (payment_id not in payments.voided) == kept
    assert set(world.store.streams) == set(orders)


@pytest.mark.parametrize("seed", range(60))
def test_random_async_runs_with_cancels_and_redeliveries_keep_every_promise(seed: int):
    rng = random.Random(seed)
    sc = scenario(rng, n_orders=12, cancel_rate=0.4)
    world = new_world(sc.stock, decline_rate=0.3, seed=seed)
    initial: list[tuple[UUID, Message]] = []
    for order_id, lines in sc.orders.items():
        initial.append((order_id, place(world, order_id, lines, sc.prices, ProcessingMode.ASYNC)))
    initial += [(o, CancelOrder(order_id=o, reason="changed my mind")) for o in sc.cancels]
    run_async(world, initial, rng, redelivery=0.25)
    check_invariants(world, sc.orders)


@pytest.mark.parametrize("seed", range(20))
def test_random_sync_runs_keep_every_promise(seed: int):
    rng = random.Random(1000 + seed)
    sc = scenario(rng, n_orders=12, cancel_rate=0.0)
    world = new_world(sc.stock, decline_rate=0.3, seed=seed)
    for order_id, lines in sc.orders.items():
        run_sync(world, order_id, place(world, order_id, lines, sc.prices, ProcessingMode.SYNC))
    check_invariants(world, sc.orders)


def test_the_last_units_are_sold_exactly_once():
    rng = random.Random(3)
    product = UUID(int=1, version=4)
    world = new_world({product: 10}, decline_rate=0.0)
    orders = {UUID(int=rng.getrandbits(128), version=4): ((product, 1),) for _ in range(50)}
    initial: list[tuple[UUID, Message]] = [
        (o, place(world, o, lines, {product: 100}, ProcessingMode.ASYNC))
        for o, lines in orders.items()
    ]
    run_async(world, initial, rng, redelivery=0.3)
    outcomes = Counter(world.store.load(o).state.outcome for o in orders)
    assert outcomes == {Outcome.CONFIRMED: 10, Outcome.STOCK_REJECTED: 40}
    assert world.products.stock[product] == 0
    check_invariants(world, orders)


def test_sync_and_async_reach_the_same_outcome_for_the_same_input():
    rng = random.Random(11)
    sc = scenario(rng, n_orders=40, cancel_rate=0.0, stock_range=(1000, 1000))
    sc.stock[next(iter(sc.stock))] = 0  # one product is sold out: those orders are rejected
    sync, asyn = new_world(sc.stock, 0.35), new_world(sc.stock, 0.35)
    initial: list[tuple[UUID, Message]] = []
    for order_id, lines in sc.orders.items():
        run_sync(sync, order_id, place(sync, order_id, lines, sc.prices, ProcessingMode.SYNC))
        initial.append((order_id, place(asyn, order_id, lines, sc.prices, ProcessingMode.ASYNC)))
    run_async(asyn, initial, rng, redelivery=0.2)

    def outcomes(world: World) -> dict[UUID, Outcome]:
        return {o: world.store.load(o).state.outcome for o in sc.orders}

    assert outcomes(sync) == outcomes(asyn)
    assert set(outcomes(sync).values()) == {
        Outcome.CONFIRMED, Outcome.PAYMENT_DECLINED, Outcome.STOCK_REJECTED}


def test_redelivered_messages_are_applied_once():
    sc = scenario(random.Random(5), n_orders=20, cancel_rate=0.0, stock_range=(1000, 1000))
    streams = []
    for redelivery in (0.0, 0.6):
        world = new_world(sc.stock, decline_rate=0.3)
        initial: list[tuple[UUID, Message]] = [
            (o, place(world, o, lines, sc.prices, ProcessingMode.ASYNC))
            for o, lines in sc.orders.items()
        ]
        run_async(world, initial, random.Random(9), redelivery=redelivery)
        streams.append(world.store.streams)
    assert streams[0] == streams[1]


def test_a_stale_append_is_refused_by_the_store():
    world = new_world({}, decline_rate=0.0)
    order_id = UUID(int=9, version=4)
    placed_event = place(world, order_id, ((P1, 1),), PRICES, ProcessingMode.ASYNC)
    order = world.store.load(order_id)
    first = react(order, ev.StockReserved(order_id=order_id, occurred_at=at(1),
                                          lines=(LineItem(P1, 1),)), at(1))
    second = react(order, CancelOrder(order_id=order_id), at(1))  # decided on the same version
    world.store.append(order_id, first.expected_version, first.events)
    with pytest.raises(FakeVersionConflict):
        world.store.append(order_id, second.expected_version, second.events)
    assert placed_event.order_id == order_id
