"""Catalog search over HTTP: ``GET /products`` (filters, full text, keyset pages, facets)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

import msgspec
from litestar import Response, get
from litestar.openapi.spec import Example
from litestar.params import Parameter

from services.product.adapters import repository
from services.product.domain.model import CatalogError
from services.product.domain.search import SORTS, build_query
from services.product.entrypoints import catalog_routes
from services.product.entrypoints import state as runtime
from services.product.entrypoints.schemas import (
    SearchResult,
    to_cents,
    view,
)
from shopstream.http import Problem, encoded, field_error

# The search's rules as JSON Schema, for the OpenAPI document (domain/search.py enforces them)
NO_CONTROL = "^[^\\x00-\\x1f\\x7f]*$"
PRICE = "^([0-9]{1,8}(\\.[0-9]{1,2})?)?$"  # empty: no bound
_PRICE = re.compile(PRICE)
_encode = msgspec.json.encode



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
        raise catalog_routes.invalid(exc) from exc


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
    return encoded(_encode(result), headers=catalog_routes.shared_cache())
