"""Which Kafka partition an order's messages go to: the partitioning strategies.

Kafka keeps order only within a partition, and a partition is consumed by one instance of a
consumer group at a time. The message key picks the partition, so the key decides both what stays
in order and how load spreads over instances. Under every strategy all messages of one order carry
the same key (the saga relies on seeing an order's messages in order); the strategies differ in
what else shares that key.

- ``order_id``: keeps each order's messages in order, nothing more. Balances best: keys are as
  many as orders and uniformly hashed, so partitions and consumer instances get even load.
- ``customer_id``: keeps all messages of one customer in order, across that customer's orders
  (e.g. a cancel of order 1 is seen before order 2 is placed). Balances by customer: a very
  active customer (a reseller, a load test using one customer id) makes one partition hot.
- ``product_id``: keys an order by its lead product (its first line), so orders led by the same
  product are processed one after another on one partition, which removes cross-instance
  contention for that product's stock rows. Balances worst: a hot product's orders all land on
  one partition and one consumer, the others idle.

``partition_for`` is Kafka's default partitioner (Java client, librdkafka ``murmur2_random``):
``toPositive(murmur2(key)) % partitions``, so tests and tools can predict placement without Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from services.order.domain.events import OrderEvent, OrderPlaced
from services.order.domain.state import OrderState


class PartitionStrategy(StrEnum):
    ORDER_ID = "order_id"
    CUSTOMER_ID = "customer_id"
    PRODUCT_ID = "product_id"


@dataclass(frozen=True, slots=True)
class KeyFields:
    """What any strategy may key an order by; carried on OrderPlaced, so the product service
    can key its answers (StockReserved/StockRejected) the same way."""

    order_id: UUID
    customer_id: UUID
    lead_product_id: UUID

    @classmethod
    def of_placed(cls, event: OrderPlaced) -> KeyFields:
        return cls(event.order_id, event.customer_id, event.lines[0].product_id)

    @classmethod
    def of_state(cls, state: OrderState) -> KeyFields:
        return cls(state.order_id, state.customer_id, state.lines[0].product_id)


def key_for(strategy: PartitionStrategy, fields: KeyFields) -> bytes:
    """The message key (the id's canonical text, ASCII) under ``strategy``."""
    chosen = {
        PartitionStrategy.ORDER_ID: fields.order_id,
        PartitionStrategy.CUSTOMER_ID: fields.customer_id,
        PartitionStrategy.PRODUCT_ID: fields.lead_product_id,
    }[strategy]
    return str(chosen).encode("ascii")


def message_key(event: OrderEvent, strategy: PartitionStrategy, order: OrderState) -> bytes:
    """The key of ``event``, one of ``order``'s events, under ``strategy``."""
    if event.order_id != order.order_id:
        raise ValueError(f"event of order {event.order_id} keyed with order {order.order_id}")
    return key_for(strategy, KeyFields.of_state(order))


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as a signed 32-bit int."""
    mask, m = 0xFFFFFFFF, 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``."""
    if partitions < 1:
        raise ValueError("a topic has at least one partition")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
