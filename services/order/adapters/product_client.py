"""The product service over HTTP, as sync orders use it: reserve, release, commit stock.

Every call names the order, and the product service makes each idempotent per order id (a
repeated reservation answers 200 with what is held, a repeated release gives back nothing), so a
call that timed out or met a restarting instance is retried safely. Calls go to
``settings.product_service`` (the gateway by default) as client ``order-service``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.order.adapters.catalog import CatalogEntry, entry_from_view
from services.order.adapters.internal_http import InternalHTTP, Response, TransportError
from services.order.domain.values import LineItem
from shopstream import tracing

log = logging.getLogger(__name__)

CLIENT_ID = "order-service"
RETRIED_STATUSES = frozenset({429, 502, 503, 504})


class ProductServiceUnavailable(Exception):
    """The product service did not give a usable answer after the retries."""


@dataclass(frozen=True, slots=True)
class Reserved:
    lines: tuple[LineItem, ...]
    unit_prices: dict[UUID, int]


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing was reserved: ``reason`` is "out of stock" or "unknown product"."""

    reason: str
    product_id: UUID | None


ReservationAnswer = Reserved | Refused


def _line_index(problem: dict[str, Any]) -> int | None:
    for error in problem.get("errors") or []:
        field = str(error.get("field", ""))
        if field.startswith("lines[") and "]" in field:
            try:
                return int(field[6 : field.index("]")])
            except ValueError:
                return None
    return None


class ProductClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        attempts: int = 4,
        backoff: float = 0.1,
        credential: str = "",
    ) -> None:
        self._http = InternalHTTP(
            base_url,
            timeout=timeout,
            connect_timeout=2.0,
            # the credential of product-service's internal /reservations API (docs/security.md)
            headers={"X-Client-Id": CLIENT_ID, "X-Service-Credential": credential},
            max_connections=200,
            max_idle=50,
        )
        self.attempts = attempts
        self.backoff = backoff

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, json: Any = None) -> Response:
        """One idempotent call, retried on connection failures, timeouts and 429/502/503/504."""
        failure = ""
        for attempt in range(1, self.attempts + 1):
            try:
                with tracing.client_span(method, path, "product-service") as headers:
                    response = await self._http.request(method, path, json=json, headers=headers)
            except TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRIED_STATUSES:
                    return response
                failure = f"HTTP {response.status_code}"
            log.warning("%s %s failed (attempt %d): %s", method, path, attempt, failure)
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        raise ProductServiceUnavailable(f"{method} {path}: {failure}")

    async def reserve(self, order_id: UUID, lines: Sequence[LineItem]) -> ReservationAnswer:
        body = {
            "order_id": str(order_id),
            "lines": [{"product_id": str(i.product_id), "quantity": i.quantity} for i in lines],
        }
        response = await self._call("POST", "/reservations", body)
        if response.status_code in (200, 201):
            held = response.json()["lines"]
            return Reserved(
                tuple(LineItem(UUID(x["product_id"]), int(x["quantity"])) for x in held),
                {UUID(x["product_id"]): int(x["unit_price_cents"]) for x in held},
            )
        if response.status_code in (409, 422):
            problem = response.json()
            index = _line_index(problem)
            product = lines[index].product_id if index is not None and index < len(lines) else None
            if response.status_code == 422:
                return Refused("unknown product", product)
            if problem.get("title") == "Out of stock":
                return Refused("out of stock", product)
        raise ProductServiceUnavailable(
            f"reservation of order {order_id}: HTTP {response.status_code} {response.text[:200]}"
        )

    async def release(self, order_id: UUID) -> tuple[LineItem, ...] | None:
        """The lines released now (empty when nothing was held any more), None if never reserved."""
        response = await self._call("POST", f"/reservations/{order_id}/release")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ProductServiceUnavailable(f"release of {order_id}: HTTP {response.status_code}")
        return tuple(
            LineItem(UUID(x["product_id"]), int(x["quantity"])) for x in response.json()["lines"]
        )

    async def commit(self, order_id: UUID) -> bool:
        response = await self._call("POST", f"/reservations/{order_id}/commit")
        return response.status_code == 200

    async def product(self, product_id: UUID) -> CatalogEntry | None:
        """The product as the product service knows it now, or None when it does not exist."""
        response = await self._call("GET", f"/products/{product_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ProductServiceUnavailable(f"product {product_id}: HTTP {response.status_code}")
        return entry_from_view(response.json())
