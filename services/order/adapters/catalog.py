"""The order service's replica of the product catalog: what it needs to validate and price lines.

Fed by product-events. Each product's events carry an increasing ``version``, so an upsert
applies only when it is newer than the row: replays and redeliveries change nothing, and a batch
is applied with one statement (the seed announces 100k products). StockChanged is not kept
(stock is the product service's to decide, at reservation) and is skipped.

The replica lags the catalog by the relay and consumer delay. A product it has never heard of
is looked up at the product service (``read_through``) before an order is refused, so a product
created a moment ago can be ordered at once; a known product's price may be stale for as long
as the lag (the order keeps the price it was placed at).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shopstream import contracts
from shopstream.contracts import products
from shopstream.contracts.topics import PRODUCT_EVENTS
from shopstream.db import Connection
from shopstream.events import Event


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    product_id: UUID
    name: str | None
    price_cents: int | None
    deleted: bool
    version: int

    @property
    def orderable(self) -> bool:
        return not self.deleted and self.price_cents is not None


class UnreadableProductEvent(ValueError):
    """A product event of a kind the replica follows that lacks what the replica needs."""


def entry_of(event: Event) -> CatalogEntry | None:
    """What a product event (``contracts.products``) says about the product, or None for events
    the replica ignores.

    Ignoring a malformed event of a followed kind would leave the replica silently stale, so it
    raises instead: the consumer dead-letters it, where an operator sees it and can replay it."""
    if event.type == products.StockChanged.__name__:
        return None  # the most frequent product event, passed over without reading its data
    try:
        change = contracts.read(PRODUCT_EVENTS, event)
    except contracts.Unreadable as exc:
        raise UnreadableProductEvent(str(exc)) from exc
    if isinstance(change, products.ProductDeleted):
        return CatalogEntry(change.id, None, None, True, change.version)
    if isinstance(change, products.ProductCreated):  # ProductUpdated too
        return CatalogEntry(change.id, change.name, change.price_cents, False, change.version)
    return None


def newest(entries: Iterable[CatalogEntry]) -> list[CatalogEntry]:
    """One entry per product, the highest version (a batch may hold several per product)."""
    best: dict[UUID, CatalogEntry] = {}
    for entry in entries:
        seen = best.get(entry.product_id)
        if seen is None or entry.version > seen.version:
            best[entry.product_id] = entry
    return list(best.values())


async def upsert(conn: Connection, entries: Sequence[CatalogEntry]) -> int:
    """Apply entries newer than the replica's rows; returns how many rows changed."""
    entries = newest(entries)
    if not entries:
        return 0
    changed = await conn.fetch(
        "INSERT INTO catalog (product_id, name, price_cents, deleted, version)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bool[], $5::int[])"
        " ON CONFLICT (product_id) DO UPDATE SET name = EXCLUDED.name,"
        " price_cents = EXCLUDED.price_cents, deleted = EXCLUDED.deleted,"
        " version = EXCLUDED.version, updated_at = clock_timestamp()"
        " WHERE catalog.version < EXCLUDED.version"
        " RETURNING product_id",
        [e.product_id for e in entries],
        [e.name for e in entries],
        [e.price_cents for e in entries],
        [e.deleted for e in entries],
        [e.version for e in entries],
    )
    return len(changed)


async def lookup(conn: Connection, product_ids: Sequence[UUID]) -> dict[UUID, CatalogEntry]:
    rows = await conn.fetch(
        "SELECT product_id, name, price_cents, deleted, version FROM catalog"
        " WHERE product_id = ANY($1::uuid[])",
        list(product_ids),
    )
    return {
        r["product_id"]: CatalogEntry(
            r["product_id"], r["name"], r["price_cents"], r["deleted"], r["version"]
        )
        for r in rows
    }


def entry_from_view(view: dict[str, Any]) -> CatalogEntry:
    """A catalog entry from the product service's JSON view of a product (price in units)."""
    cents = round(float(view["price"]) * 100)
    return CatalogEntry(UUID(str(view["id"])), str(view["name"]), cents, False, int(view["version"]))
