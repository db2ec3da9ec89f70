"""Partitioning strategies: keys per strategy, Kafka-compatible placement, order and balance."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from uuid import UUID

import pytest

from services.order.domain import events as ev
from services.order.domain.partitioning import (
    KeyFields,
    PartitionStrategy,
    key_for,
    message_key,
    murmur2,
    partition_for,
)
from services.order.tests.unit.order_builders import (
    CUSTOMER,
    ORDER,
    OTHER_ORDER,
    P1,
    all_events_of_one_order,
    at,
    placed,
)

PARTITIONS = 6


# Values from Kafka's own murmur2 tests (clients UtilsTest) and Akka's port of it.
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
        (b"1", -1993445489),
        (b"12", 126087238),
        (b"123", -267702483),
        (b"1234", -1614185708),
        (b"12345", -1188365604),
    ],
)
def test_murmur2_matches_kafka(data: bytes, expected: int):
    assert murmur2(data) == expected


def test_partition_for_is_in_range_and_stable():
    keys = [str(UUID(int=n, version=4)).encode() for n in range(1000)]
    assert all(0 <= partition_for(k, PARTITIONS) < PARTITIONS for k in keys)
    assert [partition_for(k, PARTITIONS) for k in keys] == [
        partition_for(k, PARTITIONS) for k in keys]
    assert partition_for(b"any", 1) == 0
    with pytest.raises(ValueError):
        partition_for(b"any", 0)


def test_each_strategy_keys_by_its_id():
    fields = KeyFields(ORDER, CUSTOMER, P1)
    assert key_for(PartitionStrategy.ORDER_ID, fields) == str(ORDER).encode()
    assert key_for(PartitionStrategy.CUSTOMER_ID, fields) == str(CUSTOMER).encode()
    assert key_for(PartitionStrategy.PRODUCT_ID, fields) == str(P1).encode()
    assert {s.value for s in PartitionStrategy} == {"order_id", "customer_id", "product_id"}


def test_key_fields_come_from_order_placed_or_the_order_state():
    order = placed()
    placed_event = order.events[0]
    assert isinstance(placed_event, ev.OrderPlaced)
    assert KeyFields.of_placed(placed_event) == KeyFields.of_state(order.state) == KeyFields(
        ORDER, CUSTOMER, P1)


@pytest.mark.parametrize("strategy", list(PartitionStrategy))
def test_every_event_of_an_order_gets_the_same_key_under_every_strategy(
    strategy: PartitionStrategy,
):
    state = placed().state
    keys = {message_key(e, strategy, state) for e in all_events_of_one_order()}
    assert len(keys) == 1


def test_an_event_of_another_order_cannot_be_keyed_with_this_one():
    with pytest.raises(ValueError):
        message_key(ev.OrderConfirmed(order_id=OTHER_ORDER, occurred_at=at(1)),
                    PartitionStrategy.ORDER_ID, placed().state)


def produce_and_consume(strategy: PartitionStrategy, seed: int):
    """Produce interleaved streams of many orders to partitions; consume each partition in
    order, and return what each order's consumer saw and the per-partition counts."""
    rng = random.Random(seed)
    customers = [UUID(int=rng.getrandbits(128), version=4) for _ in range(30)]
    products = [UUID(int=rng.getrandbits(128), version=4) for _ in range(20)]
    orders = [KeyFields(UUID(int=rng.getrandbits(128), version=4), rng.choice(customers),
                        rng.choice(products)) for _ in range(600)]
    produced: dict[UUID, list[int]] = {o.order_id: [] for o in orders}
    partitions: dict[int, list[tuple[UUID, int]]] = defaultdict(list)
    for step in range(6000):
        fields = rng.choice(orders)
        produced[fields.order_id].append(step)
        partitions[partition_for(key_for(strategy, fields), PARTITIONS)].append(
            (fields.order_id, step))
    consumed: dict[UUID, list[int]] = defaultdict(list)
    for partition in rng.sample(sorted(partitions), len(partitions)):  # any consumer speed
        for order_id, step in partitions[partition]:
            consumed[order_id].append(step)
    counts = Counter({p: len(msgs) for p, msgs in partitions.items()})
    return produced, consumed, counts, orders


@pytest.mark.parametrize("strategy", list(PartitionStrategy))
def test_per_key_order_holds_for_every_order(strategy: PartitionStrategy):
    produced, consumed, _, _ = produce_and_consume(strategy, seed=4)
    for order_id, steps in produced.items():
        assert consumed.get(order_id, []) == steps


def test_a_customers_orders_share_a_partition_only_under_customer_keys():
    _, _, _, orders = produce_and_consume(PartitionStrategy.CUSTOMER_ID, seed=4)
    by_customer: dict[UUID, set[int]] = defaultdict(set)
    by_customer_order_keys: dict[UUID, set[int]] = defaultdict(set)
    for o in orders:
        by_customer[o.customer_id].add(
            partition_for(key_for(PartitionStrategy.CUSTOMER_ID, o), PARTITIONS))
        by_customer_order_keys[o.customer_id].add(
            partition_for(key_for(PartitionStrategy.ORDER_ID, o), PARTITIONS))
    assert all(len(parts) == 1 for parts in by_customer.values())
    assert any(len(parts) > 1 for parts in by_customer_order_keys.values())


def test_order_keys_balance_and_a_hot_product_does_not():
    rng = random.Random(8)
    many = [KeyFields(UUID(int=rng.getrandbits(128), version=4), CUSTOMER, P1)
            for _ in range(12_000)]
    by_order = Counter(partition_for(key_for(PartitionStrategy.ORDER_ID, o), PARTITIONS)
                       for o in many)
    mean = len(many) / PARTITIONS
    assert len(by_order) == PARTITIONS
    assert all(abs(n - mean) / mean < 0.06 for n in by_order.values()), by_order

    hot = KeyFields(ORDER, CUSTOMER, P1)
    hot_orders = [KeyFields(UUID(int=n, version=4), UUID(int=n + 10**6, version=4), P1)
                  for n in range(1000)]
    by_product = Counter(partition_for(key_for(PartitionStrategy.PRODUCT_ID, o), PARTITIONS)
                         for o in [hot, *hot_orders])
    assert len(by_product) == 1  # one partition does all the hot product's work
    by_order_id = Counter(partition_for(key_for(PartitionStrategy.ORDER_ID, o), PARTITIONS)
                          for o in hot_orders)
    assert len(by_order_id) == PARTITIONS
