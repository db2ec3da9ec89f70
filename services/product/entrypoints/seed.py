"""A realistic, deterministic catalog for demos and the performance lab (``shopstream seed``).

The same count always gives the same products (ids, names, prices, stock), so benchmarks and
tests can name them. Seeding is a bulk load (COPY); a ProductCreated event per product goes into the outbox in the same
transaction, so every consumer of product events (the order service's catalog) learns the catalog.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from services.product.domain import model
from shopstream import events
from shopstream.config import Settings

SEED = 20261125
CATALOG: dict[str, tuple[list[str], list[str], tuple[int, int]]] = {
    # category: (product kinds, brands, price range in cents)
    "Electronics": (
        ["Headphones", "Speaker", "Charger", "Power Bank", "Smartwatch", "Earbuds", "Webcam"],
        ["Sonora", "Voltix", "Auralis", "Nexon", "Pulsewave"],
        (1500, 49900),
    ),
    "Computers": (
        ["Laptop", "Monitor", "Keyboard", "Mouse", "Docking Station", "SSD", "Router"],
        ["Corelyn", "Bytecraft", "Quantix", "Helion"],
        (1900, 249900),
    ),
    "Home & Kitchen": (
        ["Coffee Maker", "Blender", "Kettle", "Toaster", "Knife Set", "Frying Pan", "Air Fryer"],
        ["Hearthly", "Cucina", "Brewmaster", "Oakline"],
        (900, 39900),
    ),
    "Sports & Outdoors": (
        ["Running Shoes", "Yoga Mat", "Tent", "Backpack", "Water Bottle", "Bike Helmet"],
        ["Trailpeak", "Stridex", "Summitgear", "Aerofit"],
        (800, 59900),
    ),
    "Books": (
        ["Novel", "Cookbook", "Travel Guide", "Biography", "Poetry Collection", "Atlas"],
        ["Inkwell Press", "Northstar Books", "Paperlane"],
        (500, 6900),
    ),
    "Toys & Games": (
        ["Puzzle", "Board Game", "Building Blocks", "Plush Bear", "Kite", "Card Game"],
        ["Playwise", "Tinkertot", "Funforge"],
        (500, 12900),
    ),
    "Beauty": (
        ["Face Cream", "Shampoo", "Perfume", "Lip Balm", "Hair Dryer", "Serum"],
        ["Lumiere", "Botanica", "Velvetine"],
        (400, 15900),
    ),
    "Garden": (
        ["Hose", "Pruning Shears", "Planter", "Lawn Mower", "Seed Kit", "Garden Gloves"],
        ["Greenthumb", "Verdant", "Bloomfield"],
        (600, 89900),
    ),
    "Fashion": (
        ["Jacket", "Sneakers", "Scarf", "Jeans", "Wool Sweater", "Sunglasses", "Wallet"],
        ["Northwind", "Urbanite", "Kestrel", "Maison Clair"],
        (1200, 29900),
    ),
    "Office": (
        ["Notebook", "Desk Lamp", "Office Chair", "Pen Set", "Whiteboard", "Stapler"],
        ["Scriptor", "Deskwell", "Papyra"],
        (300, 59900),
    ),
}
ADJECTIVES = [
    "Wireless",
    "Compact",
    "Premium",
    "Ergonomic",
    "Lightweight",
    "Classic",
    "Pro",
    "Eco",
    "Smart",
    "Portable",
    "Deluxe",
    "Essential",
    "Ultra",
    "Vintage",
    "Rugged",
    "Silent",
]
COLORS = ["Black", "White", "Silver", "Blue", "Red", "Green", "Graphite", "Sand", "Navy", "Olive"]
PHRASES = [
    "built to last",
    "with a two-year warranty",
    "loved by reviewers",
    "easy to clean",
    "made from recycled materials",
    "with fast shipping",
    "a bestseller this season",
    "designed for everyday use",
    "tested for durability",
    "with a sleek modern finish",
    "energy efficient",
    "perfect as a gift",
    "compact enough for travel",
    "quiet in operation",
]


def generate(count: int) -> list[tuple[object, ...]]:
    rng = random.Random(SEED)
    categories = list(CATALOG)
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[tuple[object, ...]] = []
    for i in range(count):
        category = categories[i % len(categories)]
        kinds, brands, (low, high) = CATALOG[category]
        kind, brand = rng.choice(kinds), rng.choice(brands)
        adjective, color = rng.choice(ADJECTIVES), rng.choice(COLORS)
        model = f"{rng.choice('ABCDEFGHKMPRSTVXZ')}{rng.randint(10, 990)}"
        name = f"{brand} {adjective} {kind} {model} {color}"
        description = (
            f"The {adjective.lower()} {kind.lower()} from {brand} in {color.lower()}, "
            f"{rng.choice(PHRASES)} and {rng.choice(PHRASES)}."
        )
        # prices skew low, as in real catalogs; end in 99 cents
        price = int(low + (high - low) * rng.random() ** 2.5) // 100 * 100 + 99
        stock = 0 if rng.random() < 0.08 else rng.randint(1, 500)
        created = epoch + timedelta(seconds=i * 60 + rng.randint(0, 59))
        product_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        sku = f"{category[:3].upper().replace(' ', 'X').replace('&', 'N')}-{i:07d}"
        rows.append(
            (product_id, sku, name, description, category, brand, price, stock, created, created)
        )
    return rows


FIELDS = ("id", "sku", "name", "description", "category", "brand", "price_cents", "stock")


def _created_event(row: tuple[object, ...]) -> tuple[object, ...]:
    data: dict[str, object] = {name: value for name, value in zip(FIELDS, row, strict=False)}
    data["id"] = str(data["id"])
    data["version"] = 1
    event = events.new_event(model.PRODUCT_CREATED, str(data["id"]), data, source="product-service")
    headers = json.dumps({"event_type": model.PRODUCT_CREATED})
    return (
        uuid.UUID(event.id),
        model.TOPIC,
        event.aggregate_id,
        event.type,
        events.encode(event),
        headers,
    )


async def seed_catalog(settings: Settings, count: int, force: bool = False) -> int:
    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        seeded = await conn.fetchval(
            "SELECT count(*) FROM products WHERE sku ~ '^[A-Z]{3}-[0-9]{7}$'"
        )
        if seeded >= count and not force:
            return int(seeded)
        rows = generate(count)
        async with conn.transaction():
            await conn.execute("DELETE FROM products WHERE sku ~ '^[A-Z]{3}-[0-9]{7}$'")
            await conn.copy_records_to_table(
                "products",
                records=rows,
                columns=[
                    "id",
                    "sku",
                    "name",
                    "description",
                    "category",
                    "brand",
                    "price_cents",
                    "stock",
                    "created_at",
                    "updated_at",
                ],
            )
            await conn.copy_records_to_table(
                "outbox",
                records=[_created_event(row) for row in rows],
                columns=["event_id", "topic", "message_key", "event_type", "payload", "headers"],
            )
            await conn.execute("SELECT pg_notify('outbox', '')")
    finally:
        await conn.close()
    # only the tables' owner may ANALYZE them, not the service's role: the admin does
    admin = await asyncpg.connect(settings.admin_database_url("product"))
    try:
        await admin.execute("ANALYZE products")
    finally:
        await admin.close()
    return count
