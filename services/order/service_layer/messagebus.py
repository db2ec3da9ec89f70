"""The order service's message bus: every message the saga reacts to, and every command it
gives, goes through ``MessageBus``.

A round: the messages are decided in one unit of work (each order loaded and locked once, the
saga's decision recorded: events, projection, outbox) and committed; then the commands of the
decisions are carried out, **concurrently** (a slow payment provider overlaps instead of queueing),
by the handler the order's processing mode names in the command table
(``handlers.COMMAND_TABLE``); the answers they bring back (a payment's outcome, a reservation's)
are the next round's messages, until none is left. A sync order's request runs its one order
through it; the async saga consumer runs every stock answer of a polled batch through it at once.

Nothing is carried out before the decision that asked for it is durable, and an answer is lost to
nobody: a crash between two rounds leaves the message's offset unstored, the message comes again,
the saga ignores it as already decided, and ``resume`` asks the order what it still waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from services.order.adapters import event_store
from services.order.domain import events as ev
from services.order.domain.commands import Command
from services.order.domain.saga import Reaction, SagaMessage, react, waiting_for
from services.order.domain.state import OrderState
from services.order.domain.values import ProcessingMode
from services.order.service_layer.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 5
CommandHandler = Callable[[Command], Awaitable[ev.OrderEvent | None]]
CommandTable = Mapping[ProcessingMode, Mapping[type[Command], CommandHandler]]
Around = Callable[[UUID], contextlib.AbstractContextManager[object]]
"""What surrounds each step about an order (the consumer's trace span of its message)."""


def _nothing(order_id: UUID) -> contextlib.AbstractContextManager[object]:
    return contextlib.nullcontext()


class MessageBus:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        commands: CommandTable,
        clock: Callable[[], datetime],
        concurrency: int = 64,
    ) -> None:
        self.uow = uow
        self.commands = commands
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)

    async def handle_all(
        self, messages: Sequence[SagaMessage], *, resume: bool = False, around: Around = _nothing
    ) -> dict[UUID, OrderState]:
        """Run the messages and everything they lead to; the orders' states after the last
        decision about each. ``resume``: a message the saga ignores (a redelivery) carries out
        what its order still waits for."""
        states: dict[UUID, OrderState] = {}
        pending = list(messages)
        while pending:
            reactions = await self.decide_all(pending, around)
            work: dict[tuple[UUID, type[Command]], tuple[ProcessingMode, Command]] = {}
            for reaction in reactions:
                state = reaction.order.state
                states[state.order_id] = state
                commands = reaction.commands
                if resume and reaction.ignored:
                    commands = waiting_for(state)
                for command in commands:  # one of each kind per order and round
                    work.setdefault((command.order_id, type(command)), (state.mode, command))
            answers = await asyncio.gather(
                *(self._traced(around, m, c) for m, c in work.values())
            )
            pending = [a for a in answers if a is not None]
        return states

    async def _traced(self, around: Around, mode: ProcessingMode, command: Command) -> ev.OrderEvent | None:
        with around(command.order_id):
            return await self.execute(mode, command)

    async def decide_all(
        self, messages: Sequence[SagaMessage], around: Around = _nothing
    ) -> list[Reaction]:
        """The saga's decision about each message, recorded in one transaction (decided again
        from scratch when another writer got to an order first). Messages about unknown orders
        are skipped."""
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                async with self.uow() as uow:
                    await uow.load_all(m.order_id for m in messages)
                    reactions = []
                    for message in messages:
                        order = await uow.get(message.order_id)
                        if order is None:
                            log.info("%s for unknown order %s skipped",
                                     type(message).__name__, message.order_id)  # fmt: skip
                            continue
                        with around(message.order_id):
                            reaction = react(order, message, self.clock())
                            if reaction.events:
                                await uow.record(reaction.order)
                        reactions.append(reaction)
                return reactions
            except event_store.VersionConflict:
                if attempt == CONFLICT_RETRIES:
                    raise
        raise AssertionError("not reached")

    async def execute(self, mode: ProcessingMode, command: Command) -> ev.OrderEvent | None:
        handler = self.commands[mode][type(command)]
        async with self._slots:
            return await handler(command)
