"""Products in PostgreSQL: reads, writes with optimistic concurrency, and the search queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from services.product.domain.model import Product
from services.product.domain.search import SORTS, SearchQuery, encode_cursor
from shopstream.db import Connection

COLUMNS = "id, sku, name, description, category, brand, price_cents, stock, version, created_at, updated_at"


def to_product(row: asyncpg.Record) -> Product:
    return Product(
        id=str(row["id"]),
        sku=row["sku"],
        name=row["name"],
        description=row["description"],
        category=row["category"],
        brand=row["brand"],
        price_cents=row["price_cents"],
        stock=row["stock"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def get(
    conn: Connection | asyncpg.Pool, product_id: str, lock: bool = False
) -> Product | None:
    sql = f"SELECT {COLUMNS} FROM products WHERE id = $1"
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), product_id)
    return to_product(row) if row else None


async def insert(conn: Connection, product: Product) -> Product:
    row = await conn.fetchrow(
        f"INSERT INTO products (id, sku, name, description, category, brand, price_cents, stock)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}",
        product.id,
        product.sku,
        product.name,
        product.description,
        product.category,
        product.brand,
        product.price_cents,
        product.stock,
    )
    assert row is not None
    return to_product(row)


async def save(conn: Connection, product: Product) -> Product | None:
    """Write a revised product if nobody else did since it was read (its version minus one)."""
    row = await conn.fetchrow(
        f"UPDATE products SET sku=$2, name=$3, description=$4, category=$5, brand=$6,"
        f" price_cents=$7, stock=$8, version=$9, updated_at=clock_timestamp()"
        f" WHERE id=$1 AND version=$9 - 1 RETURNING {COLUMNS}",
        product.id,
        product.sku,
        product.name,
        product.description,
        product.category,
        product.brand,
        product.price_cents,
        product.stock,
        product.version,
    )
    return to_product(row) if row else None


async def delete(conn: Connection, product_id: str) -> None:
    await conn.execute("DELETE FROM products WHERE id = $1", product_id)


def _filters(query: SearchQuery, args: list[Any], skip_category: bool = False) -> list[str]:
    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where: list[str] = []
    if query.text:
        # Full-text match, or a close spelling of a word of the name (trigram word similarity).
        t = arg(query.text)
        where.append(f"(search @@ websearch_to_tsquery('english', {t}) OR {t} <% name)")
    if query.category and not skip_category:
        where.append(f"category = {arg(query.category)}")
    if query.brand:
        where.append(f"brand = {arg(query.brand)}")
    if query.min_price_cents is not None:
        where.append(f"price_cents >= {arg(query.min_price_cents)}")
    if query.max_price_cents is not None:
        where.append(f"price_cents <= {arg(query.max_price_cents)}")
    if query.in_stock:
        where.append("stock > 0")
    return where


class Hit(NamedTuple):
    """A product a search found, at the version it found: the page is the cached copy of exactly
    that version, or the row read again (``get_many``)."""

    id: str
    version: int
    rank: float


def search_sql(query: SearchQuery) -> tuple[str, list[Any]]:
    """The page's ids and versions, the sort key (for the next cursor) and the relevance."""
    args: list[Any] = []
    where = _filters(query, args)
    column, descending = SORTS[query.effective_sort]
    rank = "0::float8"
    if query.text:
        rank = (
            "(ts_rank_cd(search, websearch_to_tsquery('english', $1), 32)"
            " + word_similarity($1, name) * 0.1)::float8"
        )
    keyset = ""
    if query.after is not None:
        value, after_id = query.after
        if column == "created_at":
            value = datetime.fromisoformat(value)
        args.extend([value, after_id])
        op = "<" if descending else ">"
        keyset = f"({column}, id) {op} (${len(args) - 1}, ${len(args)}::uuid)"
    direction = "DESC" if descending else "ASC"
    order = f" ORDER BY {column} {direction}, id {direction} LIMIT ${len(args) + 1}"
    args.append(query.limit + 1)
    if column == "rank":
        # rank is computed, so the keyset applies to the ranked rows
        inner = f"SELECT id, version, {rank} AS rank FROM products WHERE " + " AND ".join(where)
        return f"SELECT * FROM ({inner}) AS hit" + (
            f" WHERE {keyset}" if keyset else ""
        ) + order, args
    # a plain column: the keyset condition sits beside the filters and uses the sort's index
    conditions = [*where, keyset] if keyset else where
    sql = f"SELECT id, version, {column}, {rank} AS rank FROM products"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return sql + order, args


async def search(
    conn: Connection | asyncpg.Pool, query: SearchQuery
) -> tuple[list[Hit], str | None]:
    """One page of hits and the cursor of the next page (None at the end)."""
    sql, args = search_sql(query)
    rows = await conn.fetch(sql, *args)
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit and page:
        column, _ = SORTS[query.effective_sort]
        last = page[-1]
        value = last[column]
        if isinstance(value, datetime):
            value = value.isoformat()
        next_cursor = encode_cursor(query, value, str(last["id"]))
    return [Hit(str(r["id"]), r["version"], r["rank"]) for r in page], next_cursor


async def get_many(conn: Connection | asyncpg.Pool, product_ids: list[str]) -> list[Product]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM products WHERE id = ANY($1::uuid[])", product_ids)
    return [to_product(r) for r in rows]


async def category_facets(conn: Connection | asyncpg.Pool, query: SearchQuery) -> dict[str, int]:
    """Products per category under every filter but the category itself."""
    args: list[Any] = []
    where = _filters(query, args, skip_category=True)
    sql = "SELECT category, count(*) AS n FROM products"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " GROUP BY category ORDER BY n DESC, category LIMIT 100"
    return {r["category"]: r["n"] for r in await conn.fetch(sql, *args)}
