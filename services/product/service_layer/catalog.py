"""Catalog changes, each in one unit of work: the product row and its event commit together."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.product.domain import model
from services.product.domain.model import CatalogError, Product, StaleVersion
from services.product.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory
from shopstream.events import new_event

SOURCE = "product-service"


class NotFound(Exception):
    pass


class Catalog:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    @staticmethod
    def _emit(uow: UnitOfWork, event_type: str, product_id: str, data: dict[str, Any]) -> None:
        uow.emit(model.TOPIC, product_id, new_event(event_type, product_id, data, source=SOURCE))

    async def create(self, product: Product) -> Product:
        async with self.uow() as uow:
            try:
                stored = await uow.products.insert(uow.conn, product)
            except asyncpg.UniqueViolationError as exc:
                field = "sku" if "sku" in str(exc) else "id"
                raise CatalogError([(field, f"{field} already exists")]) from exc
            self._emit(uow, model.PRODUCT_CREATED, stored.id, stored.as_event_data())
            return stored

    async def _load(self, uow: UnitOfWork, product_id: str) -> Product:
        current = await uow.products.get(uow.conn, product_id, lock=True)
        if current is None:
            raise NotFound(product_id)
        return current

    async def revise(
        self, product_id: str, changes: dict[str, Any], expected_version: int | None
    ) -> Product:
        async with self.uow() as uow:
            current = await self._load(uow, product_id)
            revised = model.revise(current, changes, expected_version)
            if not revised.changed:
                return current
            try:
                stored = await uow.products.save(uow.conn, revised)
            except asyncpg.UniqueViolationError as exc:
                raise CatalogError([("sku", "sku already exists")]) from exc
            if stored is None:
                raise StaleVersion("changed concurrently")
            data = {**stored.as_event_data(), "changed": list(revised.changed)}
            self._emit(uow, model.PRODUCT_UPDATED, stored.id, data)
            return stored

    async def set_stock(
        self, product_id: str, stock: int, expected_version: int | None, reason: str
    ) -> Product:
        async with self.uow() as uow:
            current = await self._load(uow, product_id)
            return await self._store_stock(
                uow, current, model.restock(current, stock, expected_version), reason
            )

    async def adjust_stock(self, product_id: str, delta: int, reason: str) -> Product:
        async with self.uow() as uow:
            current = await self._load(uow, product_id)
            return await self._store_stock(
                uow, current, model.adjust_stock(current, delta), reason
            )

    async def _store_stock(
        self, uow: UnitOfWork, before: Product, after: Product, reason: str
    ) -> Product:
        stored = await uow.products.save(uow.conn, after)
        if stored is None:
            raise StaleVersion("changed concurrently")
        self._emit(
            uow, model.STOCK_CHANGED, stored.id, model.stock_changed_data(before, stored, reason)
        )
        return stored

    async def delete(self, product_id: str, expected_version: int | None) -> int:
        """Delete; return the version the deletion is known by (caches drop anything older)."""
        async with self.uow() as uow:
            current = await self._load(uow, product_id)
            if expected_version is not None and expected_version != current.version:
                raise StaleVersion(
                    f"version {expected_version} is stale; current is {current.version}"
                )
            await uow.products.delete(uow.conn, product_id)
            gone = current.version + 1
            self._emit(
                uow, model.PRODUCT_DELETED, product_id, {"id": product_id, "version": gone}
            )
            return gone
