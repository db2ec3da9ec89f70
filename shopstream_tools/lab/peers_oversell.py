"""No oversell under concurrency: `buyers` shoppers order one unit each, all at once, of a product
that has `stock` units; afterwards no more than `stock` orders may be confirmed."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from typing import Any

import httpx

ADDRESS = {
    "name": "Lab",
    "line1": "1 Way",
    "city": "Lisbon",
    "postal_code": "1000-001",
    "country": "PT",
}


def verdict(stock: int, confirmed: int, stock_after: int) -> dict[str, Any]:
    return {"stock": stock, "confirmed": confirmed, "stock_after": stock_after,
            "oversold": confirmed > stock or stock_after < 0}  # fmt: skip


def shopstream(
    host: str, product: str, stock: int, customers: list[tuple[str, str]], admin: str,
    mode: str = "sync",
) -> dict[str, Any]:
    """Each of `customers` (id, bearer token) orders one unit with its own token. An async order
    is answered 202 before the stock is looked at: it counts once its saga has ended."""
    httpx.put(
        f"{host}/products/{product}/stock",
        json={"stock": stock, "reason": "peers oversell"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    ).raise_for_status()
    body = {
        "lines": [{"product_id": product, "quantity": 1}],
        "mode": mode,
        "shipping_address": ADDRESS,
    }

    async def buy(n: int, who: str, token: str, c: httpx.AsyncClient) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}", "X-Client-Id": f"oversell-{n}"}
        r = await c.post("/orders", json={**body, "customer_id": who},
                         headers={**headers, "Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
        if r.status_code != 202:
            return r.status_code, "confirmed" if r.status_code in (200, 201) else "refused"
        order = r.json()
        while order.get("outcome", "in_progress") == "in_progress":  # the saga's end, long-polled
            params = {"wait": 5, "version": order.get("version", 0)}
            got = await c.get(f"/orders/{order['id']}", params=params, headers=headers)
            got.raise_for_status()
            order = got.json()
        return r.status_code, order["outcome"]

    async def everyone() -> list[tuple[int, str]]:
        async with httpx.AsyncClient(base_url=host, timeout=120) as c:
            return await asyncio.gather(
                *(buy(n, who, token, c) for n, (who, token) in enumerate(customers))
            )

    answers = asyncio.run(everyone())
    codes = [code for code, _ in answers]
    outcomes = [outcome for _, outcome in answers]
    left = int(httpx.get(f"{host}/products/{product}", timeout=30).json()["stock"])
    return verdict(stock, outcomes.count("confirmed"), left) | {
        "mode": mode,
        "statuses": {str(c): codes.count(c) for c in sorted(set(codes))},
        "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
    }


def _sql(port: int, sql: str, database: str = "oscar") -> str:
    argv = [
        "psql",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        "shopstream",
        "-d",
        database,
        "-Atc",
        sql,
    ]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def oscar(host: str, product: int, stock: int, buyers: int, pg_port: int) -> dict[str, Any]:
    """Oscar allocates stock at checkout (num_allocated); free stock is num_in_stock - allocated."""
    _sql(
        pg_port,
        f"UPDATE partner_stockrecord SET num_in_stock={stock}, num_allocated=0 WHERE product_id={product}",
    )
    address = {"first_name": "Lab", "last_name": "Customer", "line1": "1 Way", "line4": "Lisbon",
               "postcode": "1000-001", "country": f"{host}/api/countries/PT/"}  # fmt: skip

    async def one() -> int:
        async with httpx.AsyncClient(base_url=host, timeout=120) as c:  # its own session and basket
            await c.post(
                "/api/basket/add-product/",
                json={"url": f"{host}/api/products/{product}/", "quantity": 1},
            )
            basket = (await c.get("/api/basket/")).json()["url"]
            r = await c.post("/api/checkout/", json={"basket": basket, "guest_email": "lab@example.com",
                                                     "shipping_address": address})  # fmt: skip
            return r.status_code

    async def buy() -> list[int]:
        return list(await asyncio.gather(*(one() for _ in range(buyers))))

    codes = asyncio.run(buy())
    statuses = {str(c): codes.count(c) for c in sorted(set(codes))}
    in_stock, allocated = map(
        int,
        _sql(
            pg_port,
            f"SELECT num_in_stock, num_allocated FROM partner_stockrecord WHERE product_id={product}",
        ).split("|"),
    )
    return verdict(stock, sum(1 for c in codes if c == 200), in_stock - allocated) | {
        "allocated": allocated,
        "statuses": statuses,
    }


def medusa(
    host: str, setup: dict[str, Any], sku: str, stock: int, buyers: int, pg_port: int
) -> dict[str, Any]:
    """Medusa reserves stock when a cart is completed (reservation items, the inventory level's
    reserved_quantity); free stock is stocked_quantity - reserved_quantity."""
    level = f"""FROM inventory_level l JOIN inventory_item i ON i.id = l.inventory_item_id
                WHERE i.sku = '{sku}' AND l.deleted_at IS NULL"""
    _sql(pg_port, f"DELETE FROM reservation_item WHERE inventory_item_id IN "
                  f"(SELECT id FROM inventory_item WHERE sku = '{sku}')", "medusa")  # fmt: skip
    # Medusa counts with its raw_* big-number columns; the plain ones are a copy for queries
    _sql(pg_port, f"UPDATE inventory_level SET stocked_quantity = {stock}, reserved_quantity = 0, "
                  f"raw_stocked_quantity = '{{\"value\": \"{stock}\", \"precision\": 20}}', "
                  f"raw_reserved_quantity = '{{\"value\": \"0\", \"precision\": 20}}' "
                  f"WHERE id IN (SELECT l.id {level})", "medusa")  # fmt: skip
    variant = _sql(pg_port, f"SELECT id FROM product_variant WHERE sku = '{sku}'", "medusa")
    headers = {"x-publishable-api-key": setup["publishable_key"]}
    address = {"first_name": "Lab", "last_name": "Customer", "address_1": "1 Way",
               "city": "Lisbon", "postal_code": "1000-001", "country_code": "pt"}  # fmt: skip

    async def one(c: httpx.AsyncClient) -> str:
        cart = (await c.post("/store/carts", json={"region_id": setup["region_id"],
                "email": "lab@example.com", "shipping_address": address})).json()["cart"]["id"]  # fmt: skip
        line = await c.post(
            f"/store/carts/{cart}/line-items", json={"variant_id": variant, "quantity": 1}
        )
        if line.status_code != 200:
            return f"line {line.status_code}"
        await c.post(
            f"/store/carts/{cart}/shipping-methods", json={"option_id": setup["shipping_option_id"]}
        )
        pay = (await c.post("/store/payment-collections", json={"cart_id": cart})).json()
        await c.post(f"/store/payment-collections/{pay['payment_collection']['id']}/payment-sessions",
                     json={"provider_id": "pp_system_default"})  # fmt: skip
        done = await c.post(f"/store/carts/{cart}/complete")
        return "order" if done.status_code == 200 and done.json().get("type") == "order" else (
            f"complete {done.status_code}")  # fmt: skip

    async def buy() -> list[str]:
        async with httpx.AsyncClient(base_url=host, headers=headers, timeout=120) as c:
            return list(await asyncio.gather(*(one(c) for _ in range(buyers))))

    outcomes = asyncio.run(buy())
    stocked, reserved = map(int, _sql(pg_port, f"SELECT l.raw_stocked_quantity->>'value', "
                                               f"l.raw_reserved_quantity->>'value' {level}",
                                      "medusa").split("|"))  # fmt: skip
    return verdict(stock, outcomes.count("order"), stocked - reserved) | {
        "reserved": reserved,
        "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
    }
