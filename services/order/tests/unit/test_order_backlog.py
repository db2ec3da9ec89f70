"""The admission count: full at the limit, never with limit 0, the last count kept on a failure."""

from __future__ import annotations

import asyncio

import pytest

from services.order.adapters.backlog import Backlog
from services.order.adapters.projection import IN_FLIGHT_ASYNC


class CountingPool:
    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def fetchval(self, sql: str) -> int:
        self.asked.append(sql)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_full_from_the_limit_on() -> None:
    backlog = Backlog(limit=3)
    for count, full in ((0, False), (2, False), (3, True), (40, True)):
        assert await backlog.count(CountingPool(count)) == count  # type: ignore[arg-type]
        assert backlog.full is full


async def test_no_limit_never_refuses() -> None:
    backlog = Backlog(limit=0)
    await backlog.count(CountingPool(10**6))  # type: ignore[arg-type]
    assert not backlog.full
    backlog.start(CountingPool(1))  # type: ignore[arg-type]
    assert backlog._task is None  # nothing counted when nothing is refused


def test_a_negative_limit_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="order_backlog_limit"):
        Backlog(limit=-1)


async def test_the_watch_counts_again_and_keeps_the_last_count_when_the_database_fails() -> None:
    pool = CountingPool(5, OSError("connection refused"), 7)
    backlog = Backlog(limit=6, every=0.001)
    backlog.start(pool)  # type: ignore[arg-type]
    seen = []
    for _ in range(200):
        await asyncio.sleep(0.001)
        seen.append(backlog.in_flight)
        if backlog.in_flight == 7:
            break
    await backlog.stop()
    assert pool.asked[0] == IN_FLIGHT_ASYNC
    assert seen[-1] == 7 and backlog.full
    assert 0 not in seen[seen.index(5):]  # the failed count left 5 standing, not 0
