"""The seed: deterministic, realistic, idempotent, and announced on product-events."""

from __future__ import annotations

import asyncpg
import pytest

from services.product.entrypoints.seed import generate, seed_catalog
from tests.platform_fixture import consume_events

pytestmark = pytest.mark.integration


def test_the_same_count_gives_the_same_catalog() -> None:
    assert generate(50) == generate(50)
    rows = generate(1000)
    assert len({r[0] for r in rows}) == 1000 and len({r[1] for r in rows}) == 1000
    assert len({r[4] for r in rows}) == 10, "ten categories"
    assert any(r[7] == 0 for r in rows) and any(r[7] > 0 for r in rows), "some out of stock"


async def test_seed_loads_once_and_announces_every_product(platform) -> None:
    settings = platform.settings
    # force: the test platform is shared, and another test may have seeded a larger catalog
    assert await seed_catalog(settings, 300, force=True) == 300
    assert await seed_catalog(settings, 300) == 300, "seeding again is a no-op"
    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        seeded = await conn.fetchval(
            "SELECT count(*) FROM products WHERE sku ~ '^[A-Z]{3}-[0-9]{7}$'"
        )
    finally:
        await conn.close()
    assert seeded == 300
    ids = {str(r[0]) for r in generate(300)}
    got = consume_events(
        settings,
        "product-events",
        keep=lambda e: e.aggregate_id in ids,
        until=lambda evs: {e.aggregate_id for e in evs} == ids,
    )
    assert {e.aggregate_id for e in got if e.type == "ProductCreated"} == ids, "every one announced"
    first = next(e for e in got if e.type == "ProductCreated")
    assert set(first.data) >= {"id", "sku", "name", "price_cents", "stock", "version"}
