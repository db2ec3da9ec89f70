"""Event consumers, shared by every service: one Kafka loop, two ways to apply what it polls.

Offsets are committed to Kafka only after the effect of what was polled committed in the
database, so a crash between the two redelivers and never loses. A message that can never be
applied goes to the dead-letter topic with the reason (``dlq.*`` headers) and the partition moves
on; a database that cannot be reached is waited for, never blamed on the messages.

- ``BatchConsumer`` applies a whole polled batch at once (one statement for thousands of events)
  for effects idempotent by themselves (a version guard, a unique key, a saga that ignores a
  second answer): no row per event. A batch that fails is applied again in halves, down to the
  one message at fault, which is retried and then dead-lettered.
- ``EventConsumer`` is a batch consumer for effects that are not idempotent by themselves: each
  event's effect commits with the row "this group applied event X" (``processed_events``), the
  whole batch in one transaction; a redelivered event finds its row and is skipped.
"""

from shopstream.consumer.batch import BatchApplier, BatchConsumer, Delivery, apply_isolating
from shopstream.consumer.group import (
    APPLIED,
    DEAD_LETTER_TOPIC,
    DEAD_LETTERED,
    DUPLICATES,
    EMF_LAG,
    HANDLE_SECONDS,
    LAG,
    Poison,
    Stopped,
    next_batch,
    run_members,
    waited_out,
)
from shopstream.consumer.idempotent import EventConsumer, Handler

__all__ = [
    "APPLIED",
    "DEAD_LETTERED",
    "DEAD_LETTER_TOPIC",
    "DUPLICATES",
    "EMF_LAG",
    "HANDLE_SECONDS",
    "LAG",
    "BatchApplier",
    "BatchConsumer",
    "Delivery",
    "EventConsumer",
    "Handler",
    "Poison",
    "Stopped",
    "apply_isolating",
    "next_batch",
    "run_members",
    "waited_out",
]
