"""The data a lab run works on: the seeded catalog (reads), lab products to order (plenty of
stock, plus a few scarce ones that sell out so "never oversold" is tested under load), customers
and search windows. Written as one JSON file the load generators read."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from shopstream import auth
from shopstream.config import Settings
from shopstream_tools.bench import SEEDED_SKU, price_windows

ORDER_SKU = "LAB-ORD-{:04d}"
SCARCE_SKU = "LAB-SCARCE-{:02d}"
PLENTY = 100_000_000
# units of each scarce product at the start of every test: 2% of orders take one, so a test of a
# few thousand orders sells them out and "never oversold" is checked at the edge
SCARCE_STOCK = 10
CUSTOMER_NAMESPACE = uuid.UUID("3d6f0a52-1c1b-4d55-9a43-5f1f0c6b7e21")


@dataclass
class Workload:
    path: Path
    products: list[str]
    order_products: list[str]
    scarce_products: list[str]
    scarce_stock: int
    customers: list[str]
    tokens: dict[str, str] = field(default_factory=dict)
    """customer -> bearer token minted with the local issuer's key: the lab orders as customers"""

    @property
    def lab_products(self) -> list[str]:
        return self.order_products + self.scarce_products


LAB_TOKEN_SECONDS = 86400


def _setup_headers(settings: Settings) -> dict[str, str]:
    """The lab sets up its catalog as an operator."""
    return {"X-Client-Id": "lab-setup", "Authorization": f"Bearer {auth.admin_token(settings)}"}


def customers(count: int) -> list[str]:
    return [str(uuid.uuid5(CUSTOMER_NAMESPACE, str(i))) for i in range(count)]


async def _ids(settings: Settings, catalog: int) -> list[str]:
    import asyncpg

    from services.product.entrypoints.seed import seed_catalog

    await seed_catalog(settings, catalog)
    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        rows = await conn.fetch(
            "SELECT id FROM products WHERE sku ~ $1 ORDER BY sku LIMIT $2", SEEDED_SKU, catalog
        )
        return [str(r["id"]) for r in rows]
    finally:
        await conn.close()


async def _lab_products(settings: Settings, skus: list[str]) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        rows = await conn.fetch("SELECT sku, id FROM products WHERE sku = ANY($1)", skus)
        return {r["sku"]: str(r["id"]) for r in rows}
    finally:
        await conn.close()


def _ensure_products(
    settings: Settings, client: httpx.Client, skus: list[str], stock: int, reset: bool
) -> list[str]:
    """The products with these SKUs, created through the API (so their events reach every
    consumer) when missing; with reset, their stock set to `stock`."""
    found = asyncio.run(_lab_products(settings, skus))
    for i, sku in enumerate(skus):
        if sku in found:
            if reset:
                r = client.put(
                    f"/products/{found[sku]}/stock", json={"stock": stock, "reason": "lab reset"}
                )
                r.raise_for_status()
            continue
        body = {
            "sku": sku,
            "name": f"Lab product {sku}",
            "category": "Lab",
            "brand": "Shopstream Lab",
            "price": round(5 + (i % 50) * 0.5, 2),
            "stock": stock,
        }
        r = client.post("/products", json=body)
        r.raise_for_status()
        found[sku] = r.json()["id"]
    return [found[s] for s in skus]


async def _order_catalog_knows(settings: Settings, ids: list[str]) -> bool:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url("order"))
    try:
        known = await conn.fetchval(
            "SELECT count(*) FROM catalog WHERE product_id = ANY($1::uuid[])", ids
        )
        return int(known) >= len(ids)
    except asyncpg.UndefinedTableError:
        return True  # this order service asks the product service directly
    finally:
        await conn.close()


def restock_scarce(settings: Settings, workload: Workload) -> None:
    """Put the scarce products back to their starting stock (before each test)."""
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    with httpx.Client(base_url=gateway, timeout=30, headers=_setup_headers(settings)) as c:
        for pid in workload.scarce_products:
            r = c.put(f"/products/{pid}/stock", json={"stock": workload.scarce_stock, "reason": "lab reset"})
            r.raise_for_status()


def prepare(
    settings: Settings,
    folder: Path,
    catalog: int,
    order_products: int = 200,
    scarce: int = 5,
    scarce_stock: int = SCARCE_STOCK,
    customer_count: int = 500,
    order_service: bool = True,
) -> Workload:
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    products = asyncio.run(_ids(settings, catalog))
    with httpx.Client(base_url=gateway, timeout=30, headers=_setup_headers(settings)) as c:
        plenty = _ensure_products(
            settings, c, [ORDER_SKU.format(i) for i in range(order_products)], PLENTY, False
        )
        few = _ensure_products(
            settings, c, [SCARCE_SKU.format(i) for i in range(scarce)], scarce_stock, True
        )
    if order_service:
        deadline = time.monotonic() + 60
        while not asyncio.run(_order_catalog_knows(settings, plenty + few)):
            if time.monotonic() > deadline:
                raise TimeoutError("the order service did not learn the lab products in 60 s")
            time.sleep(0.5)
    windows = [
        [quote(w.category, safe=""), w.min_low, w.min_high, w.width_low, w.width_high]
        for w in price_windows()
    ]
    who = customers(customer_count)
    # a day's validity outlasts any lab run; the services' token cache makes each a one-time cost
    tokens = {c: auth.customer_token(settings, c, LAB_TOKEN_SECONDS) for c in who}
    path = folder / "workload.json"
    path.write_text(
        json.dumps(
            {
                "products": products,
                "order_products": plenty,
                "scarce_products": few,
                "scarce_share": 0.02,
                "customers": who,
                "tokens": tokens,
                "admin_token": auth.admin_token(settings, LAB_TOKEN_SECONDS),
                "windows": windows,
            }
        )
    )
    return Workload(path, products, plenty, few, scarce_stock, who, tokens)
