"""product-service HTTP API: catalog CRUD, stock, search. Run: ``shopstream serve product``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, delete, get, patch, post, put
from litestar.openapi.spec import Example
from litestar.params import Parameter

from services.product.adapters import repository
from services.product.bootstrap import bootstrap
from services.product.domain import model
from services.product.domain.model import CatalogError, InsufficientStock, StaleVersion
from services.product.domain.search import SORTS, build_query
from services.product.entrypoints import reservation_routes
from services.product.entrypoints import state as runtime
from services.product.entrypoints.schemas import (
    NewProduct,
    ProductChanges,
    ProductReplacement,
    ProductView,
    SearchResult,
    StockAdjustment,
    StockLevel,
    editable_values,
    to_cents,
    view,
)
from services.product.service_layer.catalog import Catalog, NotFound
from shopstream import contract, db, guards
from shopstream import logging as shop_logging
from shopstream.config import Settings
from shopstream.guards import require_admin
from shopstream.http import Problem, create_app, encoded, field_error, strict_body, uuid_param

ADMIN = [require_admin]  # catalog and stock writes are for operators (docs/security.md)
# the catalog's own refusals, in the OpenAPI document (shopstream.contract adds the common ones)
CREATE_REFUSALS = contract.problems({409: "a product with this SKU exists"})
WRITE_REFUSALS = contract.problems({
    409: "the SKU belongs to another product",
    412: "If-Match names a version that is no longer current: read the product again",
})  # fmt: skip
STALE_REFUSAL = contract.problems({412: WRITE_REFUSALS[412].description})
# The search's rules as JSON Schema, for the OpenAPI document (domain/search.py enforces them)
NO_CONTROL = "^[^\\x00-\\x1f\\x7f]*$"
PRICE = "^([0-9]{1,8}(\\.[0-9]{1,2})?)?$"  # empty: no bound
_PRICE = re.compile(PRICE)
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


def _invalid(exc: CatalogError) -> Problem:
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
        raise _invalid(exc) from exc


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
        raise _invalid(exc) from exc
    return _answer(stored, 201, {"Location": f"/products/{stored.id}"})


@get("/products/{product_id:str}", summary="Read a product")
async def read_product(request: Request[Any, Any, Any], product_id: str) -> Response[ProductView]:
    """A product by id, with its ETag; served from this instance's cache when warm."""
    pid = _product_id(product_id)
    entry = runtime.STATE.cache.get(pid)
    if entry is None:
        assert runtime.STATE.pool is not None
        product = await repository.get(runtime.STATE.pool, pid)
        if product is None:
            raise _not_found(pid)
        body = _encode(view(product))
        runtime.STATE.cache.put(pid, product.version, body, product.etag)
        etag = product.etag
    else:
        body, etag = entry.body, entry.etag
    headers = {"ETag": etag, **_shared_cache()}
    if request.headers.get("if-none-match") == etag:
        return encoded(b"", 304, headers)
    return encoded(body, headers=headers)


def _shared_cache() -> dict[str, str]:
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


def _price(raw: str | None, field: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not _PRICE.fullmatch(raw):  # exactly what the OpenAPI document says, nothing laxer
        raise Problem(
            400,
            "Invalid query",
            f"{field} must be a price like 12.50",
            [field_error(field, "must be a number with at most 2 decimals")],
        )
    try:
        return to_cents(Decimal(raw), field)
    except InvalidOperation:
        raise Problem(
            400,
            "Invalid query",
            f"{field} must be a number",
            [field_error(field, "must be a number")],
        ) from None
    except CatalogError as exc:
        raise _invalid(exc) from exc


@get("/products", summary="Search and filter the catalog")
async def search_products(
    q: Annotated[
        str,
        Parameter(
            description="full-text search over name and description",
            schema_extra={"maxLength": 200, "pattern": NO_CONTROL},
            examples=[Example(value="wireless headphones")],
        ),
    ] = "",
    category: Annotated[str, Parameter(schema_extra={"pattern": NO_CONTROL})] = "",
    brand: Annotated[str, Parameter(schema_extra={"pattern": NO_CONTROL})] = "",
    min_price: Annotated[
        str | None,
        Parameter(description="lowest price, inclusive", schema_extra={"pattern": PRICE}),
    ] = None,
    max_price: Annotated[
        str | None,
        Parameter(description="highest price, inclusive", schema_extra={"pattern": PRICE}),
    ] = None,
    in_stock: bool = False,
    sort: Annotated[
        str,
        Parameter(
            description="relevance (needs q) | newest | price_asc | price_desc | name",
            schema_extra={"enum": ["", *SORTS]},
        ),
    ] = "",
    limit: Annotated[
        int,
        Parameter(
            description="page size, at most SHOPSTREAM_PAGE_SIZE_MAX (100)",
            schema_extra={"minimum": 1, "maximum": 100},
        ),
    ] = 20,
    cursor: Annotated[
        str,
        Parameter(
            description="next_cursor of the previous page (opaque; only for the same query)",
            schema_extra={"pattern": "^[A-Za-z0-9_=-]*$"},
        ),
    ] = "",
    facets: Annotated[bool, Parameter(description="include product counts per category")] = False,
) -> Response[SearchResult]:
    """Keyset-paginated search: follow next_cursor; pages stay stable while products are added."""
    try:
        query = build_query(
            text=q,
            category=category,
            brand=brand,
            min_price_cents=_price(min_price, "min_price"),
            max_price_cents=_price(max_price, "max_price"),
            in_stock=in_stock,
            sort=sort,
            limit=limit,
            limit_max=runtime.STATE.settings.page_size_max,
            cursor=cursor,
            facets=facets,
        )
    except CatalogError as exc:
        raise Problem(
            400, "Invalid query", str(exc), [field_error(f, m) for f, m in exc.errors]
        ) from exc
    assert runtime.STATE.pool is not None
    products, ranks, next_cursor = await repository.search(runtime.STATE.pool, query)
    result = SearchResult(
        items=[view(p) for p in products],
        next_cursor=next_cursor,
        facets={"category": await repository.category_facets(runtime.STATE.pool, query)}
        if facets
        else None,
        relevance=ranks if query.effective_sort == "relevance" else None,
    )
    return encoded(_encode(result), headers=_shared_cache())


async def _startup() -> None:
    runtime.STATE.pool = await db.create_pool(runtime.STATE.settings, "product")
    runtime.STATE.service = bootstrap(runtime.STATE.pool)
    runtime.STATE.listener.start()


async def _shutdown() -> None:
    runtime.STATE.listener.stop()
    if runtime.STATE.pool is not None:
        await runtime.STATE.pool.close()


async def _ready() -> bool:
    return runtime.STATE.listener.assigned.is_set() and await db.reachable(runtime.STATE.pool)


def create(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    shop_logging.configure(f"product-{settings.instance_id}", settings.log_level)
    runtime.STATE = runtime.State(settings)
    guards.configure(settings)
    return create_app(
        "product",
        "shopstream product-service",
        "Catalog CRUD, stock and search. Every change emits an event on the product-events topic.",
        [
            create_product,
            read_product,
            replace_product,
            patch_product,
            delete_product,
            set_stock,
            adjust_stock,
            search_products,
            *reservation_routes.ROUTES,
        ],
        ready_check=_ready,
        guards=[guards.authenticate],
        on_startup=[_startup],
        on_shutdown=[_shutdown],
    )
