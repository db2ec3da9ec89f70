"""Catalog search over HTTP: ``GET /products`` (filters, full text, keyset pages, facets)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Response, get
from litestar.openapi.spec import Example
from litestar.params import Parameter

from services.product.adapters import repository
from services.product.domain.model import CatalogError
from services.product.domain.search import SORTS, SearchQuery, build_query
from services.product.entrypoints import catalog_routes
from services.product.entrypoints import state as runtime
from services.product.entrypoints.schemas import (
    SearchResult,
    to_cents,
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
        query = query_of(q, category, brand, min_price, max_price, in_stock, sort, limit, cursor, facets)
    except CatalogError as exc:
        raise Problem(
            400, "Invalid query", str(exc), [field_error(f, m) for f, m in exc.errors]
        ) from exc
    return encoded(await result_json(query), headers=catalog_routes.shared_cache())


def query_of(
    q: str, category: str, brand: str, min_price: str | None, max_price: str | None,
    in_stock: bool, sort: str, limit: int, cursor: str, facets: bool,
) -> SearchQuery:  # fmt: skip
    """The search the parameters ask for; CatalogError (or a Problem) names what is wrong."""
    return build_query(
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


async def result_json(query: SearchQuery) -> bytes:
    """The page of results as the route answers it: each item a product page's JSON (from the
    instance's cache at the version the search read, else read again)."""
    hits, next_cursor = await repository.search(runtime.STATE.db, query)
    pages = await catalog_routes.pages_of(hits)
    result = _EncodedResult(
        items=[msgspec.Raw(body) for _, body in pages],
        next_cursor=next_cursor,
        facets={"category": await repository.category_facets(runtime.STATE.db, query)}
        if query.facets
        else None,
        relevance=[hit.rank for hit, _ in pages] if query.effective_sort == "relevance" else None,
    )
    return _encode(result)


# The parameters as a client sends them, for the layer in front of the app (hot_reads), which
# answers only a query it reads exactly as Litestar would and hands every other to the route.
_TEXT = ("q", "category", "brand", "min_price", "max_price", "sort", "cursor")
_BOOLS = {"true": True, "false": False}


def strict_query(query_string: bytes) -> SearchQuery | None:
    """The search a plain query string asks for; None for anything unusual (a repeated or unknown
    name, a value the route would convert differently, an invalid value: the route answers it)."""
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeError, ValueError):
        return None
    given = dict(pairs)
    if len(given) != len(pairs):
        return None
    args: dict[str, Any] = {name: given.pop(name, "") for name in _TEXT}  # "": no price bound
    for name in ("in_stock", "facets"):
        value = _BOOLS.get(given.pop(name, "false"))
        if value is None:
            return None
        args[name] = value
    limit = given.pop("limit", "20")
    if given or not (limit.isascii() and limit.isdigit() and len(limit) <= 4):
        return None
    try:
        return query_of(limit=int(limit), **args)
    except (CatalogError, Problem):
        return None


class _EncodedResult(msgspec.Struct):
    """SearchResult with its items already encoded (the product pages), field for field."""

    items: list[msgspec.Raw]
    next_cursor: str | None
    facets: dict[str, dict[str, int]] | None = None
    relevance: list[float] | None = None
