"""One process of many leads (the outbox relay, the reservations sampler): an advisory lock held by
its session; the others stand by and take over when the leader's session ends."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shopstream import db

pytestmark = pytest.mark.integration

LOCK = 0x7E57  # a key no process of the platform uses


async def test_one_leads_the_other_stands_by_and_takes_over(platform) -> None:
    url = platform.settings.database_url("product")
    first, second = await asyncpg.connect(url), await asyncpg.connect(url)
    stopping = asyncio.Event()
    waits = 0

    def standing_by() -> None:
        nonlocal waits
        waits += 1

    try:
        assert await db.lead(first, LOCK, stopping, 0.05)
        follower = asyncio.create_task(db.lead(second, LOCK, stopping, 0.05, standing_by))
        await asyncio.sleep(0.3)
        assert not follower.done() and waits >= 2  # standing by while the leader lives
        await first.close()  # the leader's session ends: its lock with it
        assert await asyncio.wait_for(follower, 5)
    finally:
        await second.close()
        if not first.is_closed():
            await first.close()


async def test_a_stop_ends_the_wait_without_leading(platform) -> None:
    url = platform.settings.database_url("product")
    leader, other = await asyncpg.connect(url), await asyncpg.connect(url)
    stopping = asyncio.Event()
    try:
        assert await db.lead(leader, LOCK, stopping, 0.05)
        waiting = asyncio.create_task(db.lead(other, LOCK, stopping, 10))
        await asyncio.sleep(0.1)
        stopping.set()
        assert await asyncio.wait_for(waiting, 2) is False
    finally:
        await leader.close()
        await other.close()
