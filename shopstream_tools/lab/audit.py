"""The consistency audit that runs after every lab test, once the system has drained.

* every accepted order reached a terminal state (CONFIRMED, CANCELLED, REJECTED);
* no stock oversold: no product below zero, and for every lab product the units are conserved:
  stock + held + sold is the same before and after the test (a reservation applied twice, or a
  release that gave back too much, breaks it);
* reservations agree with orders: a confirmed order's reservation is committed, an order that
  ended otherwise holds nothing;
* no event applied twice: no (group, event) recorded twice by the idempotent consumers, and no
  order stream with the same saga step twice.

``check`` is pure (it judges two snapshots and the query results); ``snapshot``/``collect`` read
the databases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopstream.config import Settings

TERMINAL = ("CONFIRMED", "CANCELLED", "REJECTED")
ONCE_PER_ORDER = ("StockReserved", "StockRejected", "PaymentAuthorized", "PaymentDeclined",
                  "OrderConfirmed", "OrderCancelled", "OrderRejected")  # fmt: skip


@dataclass
class Units:
    """One product's units: on the shelf, held for orders, sold."""

    stock: int
    held: int = 0
    sold: int = 0

    @property
    def total(self) -> int:
        return self.stock + self.held + self.sold


@dataclass
class Observed:
    """What the databases say, before or after a test."""

    units: dict[str, Units] = field(default_factory=dict)
    negative_stock: list[str] = field(default_factory=list)
    orders_by_status: dict[str, int] = field(default_factory=dict)
    open_orders: list[str] = field(default_factory=list)
    # (order id, order status, reservation statuses) for orders of this test
    order_reservations: list[tuple[str, str, list[str]]] = field(default_factory=list)
    duplicate_applications: list[str] = field(default_factory=list)
    duplicate_saga_steps: list[str] = field(default_factory=list)
    order_service: bool = True


def check(before: Observed, after: Observed) -> dict[str, Any]:
    """Judge the after-state against the before-state. Every check: passed + details."""
    checks: dict[str, dict[str, Any]] = {}
    if after.order_service:
        checks["accepted orders terminal"] = {
            "passed": not after.open_orders,
            "detail": f"{sum(after.orders_by_status.values())} orders; "
            f"{len(after.open_orders)} not terminal",
            "examples": after.open_orders[:10],
        }
    changed = []
    for pid, b in before.units.items():
        a = after.units.get(pid)
        if a is None or a.total != b.total:
            changed.append(f"{pid}: {b.total} units before, {a.total if a else 'gone'} after")
    checks["no stock oversold"] = {
        "passed": not after.negative_stock and not changed,
        "detail": f"{len(before.units)} products checked for conservation of units; "
        f"{len(after.negative_stock)} below zero; {len(changed)} changed their total",
        "examples": (after.negative_stock + changed)[:10],
    }
    if after.order_service:
        wrong = []
        for oid, status, reservation in after.order_reservations:
            if status == "CONFIRMED" and (not reservation or set(reservation) != {"committed"}):
                wrong.append(f"{oid}: CONFIRMED with reservation {reservation or 'none'}")
            elif status in ("CANCELLED", "REJECTED") and "held" in reservation:
                wrong.append(f"{oid}: {status} still holds stock")
        checks["reservations agree with orders"] = {
            "passed": not wrong,
            "detail": f"{len(after.order_reservations)} orders of this test compared",
            "examples": wrong[:10],
        }
    checks["no event applied twice"] = {
        "passed": not after.duplicate_applications and not after.duplicate_saga_steps,
        "detail": f"{len(after.duplicate_applications)} events recorded twice; "
        f"{len(after.duplicate_saga_steps)} order streams with a saga step twice",
        "examples": (after.duplicate_applications + after.duplicate_saga_steps)[:10],
    }
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}


async def _units(conn: Any, products: Sequence[str]) -> dict[str, Units]:
    rows = await conn.fetch(
        "SELECT p.id::text AS id, p.stock,"
        " coalesce(sum(r.quantity) FILTER (WHERE r.status = 'held'), 0) AS held,"
        " coalesce(sum(r.quantity) FILTER (WHERE r.status = 'committed'), 0) AS sold"
        " FROM products p LEFT JOIN reservations r ON r.product_id = p.id"
        " WHERE p.id = ANY($1::uuid[]) GROUP BY p.id, p.stock",
        list(products),
    )
    return {r["id"]: Units(r["stock"], int(r["held"]), int(r["sold"])) for r in rows}


async def snapshot(settings: Settings, products: Sequence[str], order_service: bool) -> Observed:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        observed = Observed(units=await _units(conn, products), order_service=order_service)
    finally:
        await conn.close()
    return observed


async def collect(
    settings: Settings, products: Sequence[str], since: Any, order_service: bool
) -> Observed:
    """The after-state; `since` (a timestamp) limits the order cross-check to this test's orders."""
    import asyncpg

    out = Observed(order_service=order_service)
    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        out.units = await _units(conn, products)
        out.negative_stock = [
            r["id"] for r in await conn.fetch("SELECT id::text AS id FROM products WHERE stock < 0")
        ]
        out.duplicate_applications = [
            f"product {r['consumer_group']} {r['event_id']}"
            for r in await conn.fetch(
                "SELECT consumer_group, event_id::text FROM processed_events"
                " GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 10"
            )
        ]
        reservations: dict[str, list[str]] = {}
        for r in await conn.fetch(
            "SELECT order_id::text AS oid, status FROM reservations WHERE created_at >= $1", since
        ):
            reservations.setdefault(r["oid"], []).append(r["status"])
    finally:
        await conn.close()
    if not order_service:
        return out
    conn = await asyncpg.connect(settings.database_url("order"))
    try:
        out.orders_by_status = {
            r["status"]: int(r["n"])
            for r in await conn.fetch(
                "SELECT status, count(*) AS n FROM orders WHERE created_at >= $1 GROUP BY status",
                since,
            )
        }
        out.open_orders = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id::text AS id FROM orders WHERE status <> ALL($1::text[])"
                " ORDER BY created_at LIMIT 1000",
                list(TERMINAL),
            )
        ]
        rows = await conn.fetch(
            "SELECT id::text AS id, status FROM orders WHERE created_at >= $1", since
        )
        out.order_reservations = [(r["id"], r["status"], reservations.get(r["id"], [])) for r in rows]
        out.duplicate_applications += [
            f"order {r['consumer_group']} {r['event_id']}"
            for r in await conn.fetch(
                "SELECT consumer_group, event_id::text FROM processed_events"
                " GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 10"
            )
        ]
        out.duplicate_saga_steps = [
            f"{r['order_id']} {r['type']} x{r['n']}"
            for r in await conn.fetch(
                "SELECT order_id::text, type, count(*) AS n FROM order_events"
                " WHERE recorded_at >= $1 AND type = ANY($2::text[])"
                " GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 10",
                since,
                list(ONCE_PER_ORDER),
            )
        ]
    finally:
        await conn.close()
    return out


async def pending_work(settings: Settings, order_service: bool) -> dict[str, int]:
    """What is still in flight: unpublished outbox rows per service, orders not terminal."""
    import asyncpg

    found: dict[str, int] = {}
    for service in ("product", "order") if order_service else ("product",):
        conn = await asyncpg.connect(settings.database_url(service))
        try:
            found[f"{service} outbox"] = int(
                await conn.fetchval("SELECT count(*) FROM outbox")
            )
            if service == "order":
                found["open orders"] = int(
                    await conn.fetchval(
                        "SELECT count(*) FROM orders WHERE status <> ALL($1::text[])",
                        list(TERMINAL),
                    )
                )
        finally:
            await conn.close()
    return found


def summarize_statuses(by_status: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "no orders"


def wait_drained(
    settings: Settings, order_service: bool, timeout: float, stop: Callable[[], bool]
) -> float | None:
    """Seconds until nothing is in flight (outboxes empty, orders terminal, no consumer lag), or
    None after the timeout or once ``stop()``."""
    import asyncio
    import time

    from shopstream_tools.lab.samplers import KafkaProbe
    from shopstream_tools.lab.testbed import TOPICS

    started = time.monotonic()
    probe = KafkaProbe(settings.kafka_servers, TOPICS)
    try:
        while time.monotonic() - started < timeout and not stop():
            pending = asyncio.run(pending_work(settings, order_service))
            lag = sum(probe.sample()["lag"].values())
            if not any(pending.values()) and lag == 0:
                return round(time.monotonic() - started, 2)
            time.sleep(0.5)
    finally:
        probe.close()
    return None
