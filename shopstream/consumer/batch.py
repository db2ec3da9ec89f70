"""Applying a polled batch at once, for effects idempotent by themselves; a failing batch is
applied again in halves, down to the message at fault."""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, NamedTuple, TypeVar

from confluent_kafka import Message

from shopstream import events
from shopstream.config import Settings
from shopstream.consumer.group import APPLIED, GroupMember, Poison, pause, waited_out

log = logging.getLogger(__name__)


class Delivery(NamedTuple):
    message: Message
    event: events.Event


BatchApplier = Callable[[list[Delivery]], Awaitable[None]]
"""Makes a batch's effect durable before it returns (the offsets are committed next), and leaves
things as they are when given events it already applied."""

T = TypeVar("T")


async def apply_isolating(
    items: Sequence[T],
    apply: Callable[[list[T]], Awaitable[None]],
    *,
    wait_out: Callable[[BaseException], Awaitable[None]],
    again: Callable[[T, BaseException, int], Awaitable[bool]],
    refuse: Callable[[T, BaseException, int], Awaitable[None]],
) -> None:
    """Apply ``items`` at once. When that fails for a reason ``waited_out``, wait and try the
    same again. When it fails otherwise, apply each half apart (the first half first, so every
    partition stays in order), down to the item at fault: that one is tried again while
    ``again(item, exc, failures)`` says so, then ``refuse``d, and the others are applied."""
    failures = 0
    while True:
        try:
            await apply(list(items))
            return
        except Exception as exc:
            if waited_out(exc):
                await wait_out(exc)
                continue
            if len(items) > 1:
                half = len(items) // 2
                await apply_isolating(
                    items[:half], apply, wait_out=wait_out, again=again, refuse=refuse
                )
                await apply_isolating(
                    items[half:], apply, wait_out=wait_out, again=again, refuse=refuse
                )
                return
            failures += 1
            if isinstance(exc, Poison) or not await again(items[0], exc, failures):
                await refuse(items[0], exc, failures)
                return


class BatchConsumer(GroupMember):
    """Applies each polled batch in one go, for appliers idempotent by what they write (there is
    no ``processed_events`` row per event). A batch that fails for a reason other than the
    database's unavailability is split until the message at fault is alone; that one is tried
    ``max_attempts`` times, then dead-lettered, and the rest is applied."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        topics: list[str],
        apply: BatchApplier,
        *,
        batch_size: int = 2000,
        types: Collection[str] | None = None,
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
    ) -> None:
        super().__init__(settings, group, topics, max_attempts, retry_backoff)
        self.apply = apply
        self.batch_size = batch_size
        # by their event_type header (the relay sets it), so the others pass over undecoded
        self.types = {t.encode() for t in types} if types is not None else None

    async def process(self, batch: list[Message]) -> None:
        deliveries: list[Delivery] = []
        for message in batch:
            kind = _event_type(message)
            if self.types is not None and kind is not None and kind not in self.types:
                continue  # a message with no event_type header is decoded and judged by its body
            try:
                deliveries.append(Delivery(message, events.decode(message.value() or b"")))
            except Exception as exc:
                await self._dead_letter(message, f"undecodable: {exc}", 1)
        outages = 0

        async def wait_out(exc: BaseException) -> None:
            nonlocal outages
            outages = await self._wait_for_database(exc, outages, f"{len(deliveries)} events")

        await apply_isolating(
            deliveries, self._apply, wait_out=wait_out, again=self._again, refuse=self._refuse
        )

    async def _apply(self, deliveries: list[Delivery]) -> None:
        await self.apply(deliveries)
        for kind, n in Tally(d.event.type for d in deliveries).items():
            APPLIED.labels(self.group, kind).inc(n)

    async def _again(self, delivery: Delivery, exc: BaseException, failures: int) -> bool:
        log.warning(
            "group %s: event %s failed (attempt %d): %s",
            self.group,
            delivery.event.id,
            failures,
            f"{type(exc).__name__}: {exc}",
        )
        if failures >= self.max_attempts:
            return False
        await self._wait(pause(self.retry_backoff, failures))
        return True

    async def _refuse(self, delivery: Delivery, exc: BaseException, attempts: int) -> None:
        reason = f"poison: {exc}" if isinstance(exc, Poison) else f"{type(exc).__name__}: {exc}"
        await self._dead_letter(delivery.message, reason, attempts)


def _event_type(message: Message) -> bytes | None:
    headers: Any = message.headers() or []
    value: bytes | None = dict(headers).get("event_type")
    return value
