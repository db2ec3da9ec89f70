"""The catalog over HTTP: create, read, replace, patch and delete a product, and set or adjust its
stock. Writes are for operators; each one is a catalog use case (``service_layer/catalog.py``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, patch, post, put

from services.product.adapters import repository
from services.product.domain import model
from services.product.domain.model import CatalogError, InsufficientStock, StaleVersion
from services.product.entrypoints import state as runtime
from services.product.entrypoints.schemas import (
    NewProduct,
    ProductChanges,
    ProductReplacement,
    ProductView,
    StockAdjustment,
    StockLevel,
    editable_values,
    view,
)
from services.product.service_layer.catalog import Catalog, NotFound
from shopstream import contract
from shopstream.guards import require_admin
from shopstream.http import Problem, encoded, field_error, strict_body, uuid_param

ADMIN = [require_admin]  # catalog and stock writes are for operators (docs/security.md)
# the catalog's own refusals, in the OpenAPI document (shopstream.contract adds the common ones)
CREATE_REFUSALS = contract.problems({409: "a product with this SKU exists"})
WRITE_REFUSALS = contract.problems({
    409: "the SKU belongs to another product",
    412: "If-Match names a version that is no longer current: read the product again",
})  # fmt: skip
STALE_REFUSAL = contract.problems({412: WRITE_REFUSALS[412].description})
_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')
_encode = msgspec.json.encode


def _catalog() -> Catalog:
    return runtime.STATE.catalog


def _product_id(raw: str) -> str:
    return str(uuid_param(raw, "id"))


def _expected_version(request: Request[Any, Any, Any]) -> int | None:
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header.strip())
    if not match:
        raise Problem(
            400,
            "Invalid If-Match",
            "If-Match must be an ETag this service issued",
            [field_error("If-Match", 'must look like "3"')],
        )
    return int(match.group(1))


def invalid(exc: CatalogError) -> Problem:
    """400 naming the fields; 409 when the broken rule is a unique SKU."""
    if any(f == "sku" and "exists" in m for f, m in exc.errors):
        return Problem(409, "Duplicate SKU", str(exc), [field_error(f, m) for f, m in exc.errors])
    return Problem(400, "Invalid product", str(exc), [field_error(f, m) for f, m in exc.errors])


def _not_found(product_id: str) -> Problem:
    return Problem(
        404, "Product not found", f"no product {product_id}", [field_error("id", "unknown product")]
    )


def _stale(exc: StaleVersion) -> Problem:
    return Problem(
        412,
        "Precondition failed",
        f"{exc}; read the product again and retry",
        [field_error("If-Match", "stale version")],
    )


@contextmanager
def _problems(product_id: str) -> Iterator[None]:
    """The catalog's refusals as the problem each is: one mapping for every route."""
    try:
        yield
    except NotFound:
        raise _not_found(product_id) from None
    except StaleVersion as exc:
        raise _stale(exc) from exc
    except InsufficientStock as exc:
        raise Problem(
            409, "Insufficient stock", str(exc), [field_error("delta", str(exc))]
        ) from exc
    except CatalogError as exc:
        raise invalid(exc) from exc


def _answer(
    product: model.Product, status: int = 200, headers: dict[str, str] | None = None
) -> Response[ProductView]:
    body = _encode(view(product))
    runtime.STATE.cache.invalidate(product.id, product.version)
    return encoded(body, status, {"ETag": product.etag, **(headers or {})})


@post(
    "/products",
    status_code=201,
    guards=ADMIN,
    responses=CREATE_REFUSALS,
    summary="Create a product",
)
async def create_product(
    request: Request[Any, Any, Any], data: NewProduct
) -> Response[ProductView]:
    """Create a product; emits ProductCreated."""
    data = await strict_body(request, NewProduct)
    try:
        values = editable_values(data)
        product = model.new_product(str(uuid.uuid4()), values)
        stored = await _catalog().create(product)
    except CatalogError as exc:
        raise invalid(exc) from exc
    return _answer(stored, 201, {"Location": f"/products/{stored.id}"})


@get("/products/{product_id:str}", summary="Read a product")
async def read_product(request: Request[Any, Any, Any], product_id: str) -> Response[ProductView]:
    """A product by id, with its ETag; served from this instance's cache when warm."""
    pid = _product_id(product_id)
    found = await product_json(pid)
    if found is None:
        raise _not_found(pid)
    body, etag = found
    headers = {"ETag": etag, **shared_cache()}
    if request.headers.get("if-none-match") == etag:
        return encoded(b"", 304, headers)
    return encoded(body, headers=headers)


async def product_json(pid: str) -> tuple[bytes, str] | None:
    """A product's JSON and ETag from this instance's cache, else from the database (then kept)."""
    entry = runtime.STATE.cache.get(pid)
    if entry is not None:
        return entry.body, entry.etag
    product = await repository.get(runtime.STATE.db, pid)
    if product is None:
        return None
    return _kept(product), product.etag


def _kept(product: model.Product) -> bytes:
    """A product page's JSON, kept in this instance's cache at the product's version."""
    body = _encode(view(product))
    runtime.STATE.cache.put(product.id, product.version, body, product.etag)
    return body


async def pages_of(hits: list[repository.Hit]) -> list[tuple[repository.Hit, bytes]]:
    """Each hit's product JSON at the version the search read: the cached copy when it is that
    version, else the rows read again in one query (then kept). A product deleted in between is
    left out."""
    cache = runtime.STATE.cache
    found: dict[str, bytes] = {}
    missing = []
    for hit in hits:
        entry = cache.at_version(hit.id, hit.version)
        if entry is None:
            missing.append(hit.id)
        else:
            found[hit.id] = entry.body
    if missing:
        for product in await repository.get_many(runtime.STATE.db, missing):
            found[product.id] = _kept(product)
    return [(hit, found[hit.id]) for hit in hits if hit.id in found]


def shared_cache() -> dict[str, str]:
    """The gateway may keep a public catalog read this long (docs/gateway.md#read-cache)."""
    age = runtime.STATE.settings.product_read_max_age
    return {"Cache-Control": f"public, max-age={age}"} if age > 0 else {}


async def _revise(
    request: Request[Any, Any, Any], product_id: str, body: msgspec.Struct
) -> Response[ProductView]:
    pid = _product_id(product_id)
    with _problems(pid):
        changes = editable_values(body)
        stored = await _catalog().revise(pid, changes, _expected_version(request))
    return _answer(stored)


@put(
    "/products/{product_id:str}",
    guards=ADMIN,
    responses=WRITE_REFUSALS,
    summary="Replace a product's editable fields",
)
async def replace_product(
    request: Request[Any, Any, Any], product_id: str, data: ProductReplacement
) -> Response[ProductView]:
    """Full update. Send If-Match with the ETag you read: a stale write answers 412."""
    return await _revise(request, product_id, await strict_body(request, ProductReplacement))


@patch(
    "/products/{product_id:str}",
    guards=ADMIN,
    responses=WRITE_REFUSALS,
    summary="Change some fields of a product",
)
async def patch_product(
    request: Request[Any, Any, Any], product_id: str, data: ProductChanges
) -> Response[ProductView]:
    """Partial update (merge patch). Send If-Match with the ETag you read: a stale write answers 412."""
    return await _revise(request, product_id, await strict_body(request, ProductChanges))


@delete(
    "/products/{product_id:str}",
    status_code=204,
    guards=ADMIN,
    responses=STALE_REFUSAL,
    summary="Delete a product",
)
async def delete_product(request: Request[Any, Any, Any], product_id: str) -> None:
    """Delete a product; emits ProductDeleted."""
    pid = _product_id(product_id)
    with _problems(pid):
        gone = await _catalog().delete(pid, _expected_version(request))
    runtime.STATE.cache.invalidate(pid, gone)


@put(
    "/products/{product_id:str}/stock",
    guards=ADMIN,
    responses=STALE_REFUSAL,
    summary="Set the stock level",
)
async def set_stock(
    request: Request[Any, Any, Any], product_id: str, data: StockLevel
) -> Response[ProductView]:
    """Set the units in stock (a stock count); emits StockChanged."""
    pid = _product_id(product_id)
    data = await strict_body(request, StockLevel)
    with _problems(pid):
        stored = await _catalog().set_stock(
            pid, data.stock, _expected_version(request), data.reason
        )
    return _answer(stored)


@post(
    "/products/{product_id:str}/stock/adjustments",
    status_code=200,
    guards=ADMIN,
    responses=contract.problems({409: "the adjustment would take the stock below zero"}),
    summary="Add or remove stock",
)
async def adjust_stock(
    request: Request[Any, Any, Any], product_id: str, data: StockAdjustment
) -> Response[ProductView]:
    """Add (delta > 0) or remove (delta < 0) units atomically; never below zero (409)."""
    pid = _product_id(product_id)
    data = await strict_body(request, StockAdjustment)
    with _problems(pid):
        stored = await _catalog().adjust_stock(pid, data.delta, data.reason)
    return _answer(stored)


ROUTES = [
    create_product,
    read_product,
    replace_product,
    patch_product,
    delete_product,
    set_stock,
    adjust_stock,
]
