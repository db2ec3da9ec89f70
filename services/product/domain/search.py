"""Catalog search: what a query may ask for, and the opaque cursors that page through the results.

Pages are keyset pages: a cursor holds the sort key and id of the last product shown, and the next
page starts strictly after it. Products inserted meanwhile never shift a page or repeat a product.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from services.product.domain.model import MAX_PRICE_CENTS, CatalogError

# sort name -> (sort column, descending?)
SORTS: dict[str, tuple[str, bool]] = {
    "relevance": ("rank", True),
    "newest": ("created_at", True),
    "price_asc": ("price_cents", False),
    "price_desc": ("price_cents", True),
    "name": ("name", False),
}
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    category: str = ""
    brand: str = ""
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    in_stock: bool = False
    sort: str = ""
    limit: int = DEFAULT_LIMIT
    after: tuple[Any, str] | None = None  # decoded cursor: (sort value, product id)
    facets: bool = False

    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if self.text else "newest")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def build_query(
    *,
    text: str = "",
    category: str = "",
    brand: str = "",
    min_price_cents: int | None = None,
    max_price_cents: int | None = None,
    in_stock: bool = False,
    sort: str = "",
    limit: int = DEFAULT_LIMIT,
    limit_max: int = 100,
    cursor: str = "",
    facets: bool = False,
) -> SearchQuery:
    errors: list[tuple[str, str]] = [
        # PostgreSQL text cannot hold NUL; no shopper types a control character (issue 12)
        (name, "must not contain control characters")
        for name, value in (
            ("q", text),
            ("category", category),
            ("brand", brand),
            ("cursor", cursor),
        )
        if _CONTROL.search(value)
    ]
    if len(text) > 200:  # before stripping: the length the client sent, as the OpenAPI says
        errors.append(("q", "must be at most 200 characters"))
    text = text.strip()
    if sort and sort not in SORTS:
        errors.append(("sort", f"must be one of {', '.join(SORTS)}"))
    if sort == "relevance" and not text:
        errors.append(("sort", "relevance needs a search text (q)"))
    if not 1 <= limit <= limit_max:
        errors.append(("limit", f"must be between 1 and {limit_max}"))
    for name, value in (("min_price", min_price_cents), ("max_price", max_price_cents)):
        if value is not None and not 0 <= value <= MAX_PRICE_CENTS:
            errors.append((name, f"must be between 0 and {MAX_PRICE_CENTS // 100}"))
    if (
        min_price_cents is not None
        and max_price_cents is not None
        and min_price_cents > max_price_cents
    ):
        errors.append(("min_price", "must not exceed max_price"))
    query = SearchQuery(
        text=text,
        category=category.strip(),
        brand=brand.strip(),
        min_price_cents=min_price_cents,
        max_price_cents=max_price_cents,
        in_stock=in_stock,
        sort=sort,
        limit=limit,
        facets=facets,
    )
    after = None
    if cursor and not errors:
        try:
            after = decode_cursor(cursor, query)
        except CatalogError as exc:
            errors.extend(exc.errors)
    if errors:
        raise CatalogError(errors)
    return SearchQuery(**{**query.__dict__, "after": after})


def _fingerprint(query: SearchQuery) -> str:
    """Ties a cursor to the query that made it: a cursor is meaningless under other filters."""
    parts = (
        query.text,
        query.category,
        query.brand,
        query.min_price_cents,
        query.max_price_cents,
        query.in_stock,
        query.effective_sort,
    )
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def encode_cursor(query: SearchQuery, sort_value: Any, product_id: str) -> str:
    payload = [query.effective_sort, sort_value, product_id, _fingerprint(query)]
    raw = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, query: SearchQuery) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort, value, product_id, fingerprint = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise CatalogError([("cursor", "is not a cursor this service issued")]) from exc
    if sort != query.effective_sort or fingerprint != _fingerprint(query):
        raise CatalogError([("cursor", "belongs to a different query or sort")])
    if not isinstance(product_id, str) or value is None:
        raise CatalogError([("cursor", "is not a cursor this service issued")])
    return value, product_id
