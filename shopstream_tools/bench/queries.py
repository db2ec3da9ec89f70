"""What the two reads ask for, as wrk draws it and as pgbench runs it.

The search's price windows feed both wrk's script and pgbench's; pgbench runs the product
service's own SQL (taken from its repository, not copied) with its random draws in place of the
request's parameters, so ceiling B is the same query the service makes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shopstream_tools.bench.catalog import BENCH_SCHEMA

SEARCH_PAGE = 20


def pgbench_statement(sql: str, args: Sequence[Any], bindings: dict[int, str]) -> str:
    """The service's SQL with $n replaced: by a pgbench `:variable` or an SQL literal.

    bindings maps a parameter number to its replacement; parameters without one become literals.
    """

    def replace(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n in bindings:
            return bindings[n]
        value = args[n - 1]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"cannot write ${n}={value!r} as a literal")
        return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"

    return re.sub(r"\$(\d+)", replace, sql)


@dataclass(frozen=True)
class PriceWindow:
    """How a search draws its price filter for one category (whole currency units)."""

    category: str
    min_low: int
    min_high: int
    width_low: int
    width_high: int


def price_windows() -> list[PriceWindow]:
    """For each seeded category: min_price within the cheaper quarter of its range (prices skew
    low), max_price 5 units to a tenth of the range above it. Most searches fill a page."""
    from services.product.entrypoints.seed import CATALOG

    windows = []
    for category, (_kinds, _brands, (low, high)) in CATALOG.items():
        span = (high - low) // 100
        windows.append(
            PriceWindow(category, low // 100, low // 100 + span // 4, 5, max(10, span // 10))
        )
    return windows


def windows_file_text(windows: Sequence[PriceWindow]) -> str:
    from urllib.parse import quote

    return "".join(
        f"{quote(w.category, safe='')} {w.min_low} {w.min_high} {w.width_low} {w.width_high}\n"
        for w in windows
    )


def by_id_script() -> str:
    from services.product.adapters.repository import COLUMNS

    return (
        f"\\set n random(1, :products)\n"
        f"SELECT {COLUMNS} FROM products"
        f" WHERE id = (SELECT id FROM {BENCH_SCHEMA}.product_ids WHERE n = :n);\n"
    )


def search_script(window: PriceWindow) -> str:
    from services.product.adapters.repository import search_sql
    from services.product.domain.search import SearchQuery

    query = SearchQuery(
        category=window.category,
        min_price_cents=1,
        max_price_cents=2,
        in_stock=True,
        sort="price_asc",
        limit=SEARCH_PAGE,
    )
    sql, args = search_sql(query)
    positions = {value: n for n, value in enumerate(args, start=1) if isinstance(value, int)}
    bindings = {
        positions[1]: ":min_cents",
        positions[2]: ":max_cents",
        positions[SEARCH_PAGE + 1]: ":page",
    }
    return (
        f"\\set min_price random({window.min_low}, {window.min_high})\n"
        f"\\set max_price :min_price + random({window.width_low}, {window.width_high})\n"
        "\\set min_cents 100 * :min_price\n"
        "\\set max_cents 100 * :max_price\n"
        f"\\set page {SEARCH_PAGE + 1}\n"
        f"{pgbench_statement(sql, args, bindings)};\n"
    )
