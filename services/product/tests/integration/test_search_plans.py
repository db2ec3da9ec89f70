"""The catalog's searches keep their indexes on a large catalog: EXPLAIN on a copy of the products
table (its indexes included) filled with 300k products over 30 categories, the way a grown shop's
catalog looks. A plan that reads the whole table is what makes a search cost grow with the catalog
(issue 17)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.product.adapters import repository
from services.product.domain.search import build_query
from tests.query_plans import SCHEMA, Statements, plans_on_copy, scans

pytestmark = pytest.mark.integration

PRODUCTS = 300_000


def _scans(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(node type, index) of every scan of the products table in a plan tree."""
    return [(n["Node Type"], n.get("Index Name")) for n in scans(plan)
            if n.get("Relation Name") == "products"]  # fmt: skip


WORDS = "'{lamp,chair,table,speaker,kettle,jacket,boot,drill,pan,desk}'::text[]"
FILL = (
    f"CREATE TABLE {SCHEMA}.products (LIKE public.products INCLUDING ALL)",
    f"INSERT INTO {SCHEMA}.products (id, sku, name, description, category, brand,"
    " price_cents, stock, created_at, updated_at) SELECT"
    " ('00000000-0000-0000-0000-' || lpad(to_hex(n), 12, '0'))::uuid,"
    " 'PLN-' || lpad(n::text, 7, '0'),"
    # a thousand rarer words too: a shopper's word matches a small part of a big catalog
    f" 'Model ' || n || ' ' || ({WORDS})[1 + n % 10] || ' '"
    " || substr(md5((n % 1000)::text), 1, 8),"
    f" 'A sturdy ' || ({WORDS})[1 + (n / 7) % 10] || ' for every day',"
    " 'category-' || (n % 30), 'brand-' || (n % 400),"
    " 500 + (n::bigint * 7919) % 200000, (n % 11) * 3,"
    " now() - make_interval(secs => n), now() - make_interval(secs => n)"
    f" FROM generate_series(1, {PRODUCTS}) AS n",
    f"ANALYZE {SCHEMA}.products",
)  # fmt: skip


async def _plans(settings, statements: Statements) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return await plans_on_copy(settings, "product", FILL, f"{SCHEMA}, public", statements)


def test_searches_use_their_indexes_on_a_large_catalog(platform) -> None:
    queries = {
        # the storefront's filtered search (and the bench's): a category's price window in stock
        "category, price window, in stock, cheapest first": build_query(
            category="category-7", min_price_cents=10_000, max_price_cents=12_000,
            in_stock=True, sort="price_asc",
        ),
        "a rare word, by relevance": build_query(text="41ae36ec"),
        "newest first": build_query(sort="newest"),
        "a brand": build_query(brand="brand-17"),
    }  # fmt: skip
    plans = asyncio.run(
        _plans(
            platform.settings,
            {
                **{name: repository.search_sql(q) for name, q in queries.items()},
                "one product": (
                    f"SELECT {repository.COLUMNS} FROM products WHERE id = $1",
                    ["00000000-0000-0000-0000-000000000007"],
                ),
            },
        )
    )
    for name, plan in plans.items():
        scans = _scans(plan)
        assert scans and all(kind != "Seq Scan" for kind, _ in scans), (name, scans)
