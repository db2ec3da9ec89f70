"""How a failing batch is taken apart (pure: the items are numbers, the database a list)."""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions._base as asyncpg_base
import pytest

from shopstream.consumer import Poison, apply_isolating, waited_out


class Store:
    """Applies numbers in one go, or refuses the whole batch as a database would."""

    def __init__(self, refuses: dict[int, Exception] | None = None, down_for: int = 0) -> None:
        self.refuses = refuses or {}
        self.down_for = down_for
        self.applied: list[int] = []
        self.batches: list[list[int]] = []
        self.waits = 0
        self.refused: list[tuple[int, str, int]] = []

    async def apply(self, items: list[int]) -> None:
        self.batches.append(items)
        if self.down_for:
            self.down_for -= 1
            raise ConnectionRefusedError("database down")
        for item in items:
            if item in self.refuses:
                raise self.refuses[item]
        self.applied.extend(items)

    async def wait_out(self, exc: BaseException) -> None:
        self.waits += 1

    def again(self, most: int):
        async def again(item: int, exc: BaseException, failures: int) -> bool:
            return failures < most

        return again

    async def refuse(self, item: int, exc: BaseException, failures: int) -> None:
        self.refused.append((item, type(exc).__name__, failures))

    async def run(self, items: list[int], most: int = 3) -> None:
        await apply_isolating(
            items, self.apply, wait_out=self.wait_out, again=self.again(most), refuse=self.refuse
        )


async def test_the_message_at_fault_is_refused_and_the_others_applied_in_order() -> None:
    store = Store(refuses={5: ValueError("out of range")})
    await store.run(list(range(12)))
    assert store.applied == [n for n in range(12) if n != 5]
    assert store.refused == [(5, "ValueError", 3)]
    assert store.batches.count([5]) == 3, "the one at fault is tried max_attempts times"
    assert len(store.batches) < 12, "halving, not one by one"


async def test_several_messages_at_fault_are_each_refused() -> None:
    store = Store(refuses={0: ValueError("a"), 7: KeyError("b"), 8: ValueError("c")})
    await store.run(list(range(9)))
    assert store.applied == [1, 2, 3, 4, 5, 6]
    assert [r[0] for r in store.refused] == [0, 7, 8]


async def test_a_poison_is_refused_without_being_tried_again() -> None:
    store = Store(refuses={2: Poison("unreadable")})
    await store.run([1, 2, 3])
    assert store.refused == [(2, "Poison", 1)]
    assert store.applied == [1, 3]


async def test_a_database_outage_is_waited_out_without_splitting_or_refusing() -> None:
    store = Store(down_for=4)
    await store.run(list(range(8)), most=1)
    assert store.waits == 4 and store.refused == []
    assert store.batches == [list(range(8))] * 5
    assert store.applied == list(range(8))


async def test_a_failure_that_does_not_come_back_refuses_nothing() -> None:
    class Flaky(Store):
        async def apply(self, items: list[int]) -> None:
            if not self.batches:
                self.batches.append(items)
                raise ValueError("once")
            await super().apply(items)

    store = Flaky()
    await store.run([1, 2, 3, 4])
    assert store.applied == [1, 2, 3, 4] and store.refused == []


@pytest.mark.parametrize(
    ("failure", "waited"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed"), True),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), True),
        (asyncpg.exceptions.TooManyConnectionsError("too many"), True),
        (asyncpg.exceptions.SerializationError("retry"), True),
        (asyncpg.exceptions.UndefinedTableError("no table"), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        # the event's own: a value the table refuses, its rules refuse, the client cannot encode
        (asyncpg.exceptions.CharacterNotInRepertoireError("NUL"), False),
        (asyncpg.exceptions.CheckViolationError("check"), False),
        (asyncpg_base.DataError("out of int32 range"), False),
        (KeyError("id"), False),
        (Poison("unreadable"), False),
    ],
)
def test_what_is_waited_out(failure: Exception, waited: bool) -> None:
    assert waited_out(failure) is waited
