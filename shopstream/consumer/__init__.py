"""The event consumer every service shares: one Kafka loop applying what it polls a batch at once.

Offsets are committed to Kafka only after the effect of what was polled committed in the
database, so a crash between the two redelivers and never loses. A message that can never be
applied goes to the dead-letter topic with the reason (``dlq.*`` headers) and the partition moves
on; a database that cannot be reached is waited for, never blamed on the messages.

``BatchConsumer`` applies a whole polled batch at once (one statement for thousands of events).
Its applier must be idempotent by what it writes (a version guard, a unique key, a saga that finds
its own records and ignores a second answer): a redelivered event then changes nothing, and no
record of applied events is kept. A batch that fails is applied again in halves, down to the one
message at fault, which is retried and then dead-lettered.
"""

from shopstream.consumer.batch import BatchApplier, BatchConsumer, Delivery, apply_isolating
from shopstream.consumer.dead_letters import DEAD_LETTER_TOPIC, DEAD_LETTERED
from shopstream.consumer.group import (
    APPLIED,
    EMF_LAG,
    LAG,
    Poison,
    Stopped,
    next_batch,
    run_members,
    waited_out,
)

__all__ = [
    "APPLIED",
    "DEAD_LETTERED",
    "DEAD_LETTER_TOPIC",
    "EMF_LAG",
    "LAG",
    "BatchApplier",
    "BatchConsumer",
    "Delivery",
    "Poison",
    "Stopped",
    "apply_isolating",
    "next_batch",
    "run_members",
    "waited_out",
]
