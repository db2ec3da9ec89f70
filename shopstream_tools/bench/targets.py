"""What `shopstream bench products` measures: two reads through the gateway and their ceilings."""

from __future__ import annotations

FIXED = "nginx-fixed"
BY_ID = "get-by-id"
SEARCH = "search"
PG_BY_ID = "pgbench-by-id"
PG_SEARCH = "pgbench-search"
# One round, in order (even rounds run it backwards): each target sits next to its ceilings.
ROUND = (FIXED, BY_ID, PG_BY_ID, SEARCH, PG_SEARCH)
LABELS = {
    FIXED: "nginx /fixed (ceiling A)",
    BY_ID: "GET /products/{id}",
    SEARCH: "GET /products?category&price&in_stock",
    PG_BY_ID: "pgbench PK read (ceiling B)",
    PG_SEARCH: "pgbench search SQL (ceiling B)",
}
# target -> its pgbench equivalent
EQUIVALENT = {BY_ID: PG_BY_ID, SEARCH: PG_SEARCH}


def round_order(round_number: int) -> tuple[str, ...]:
    """Odd rounds run forwards, even rounds backwards, so no kind always runs first or last."""
    return ROUND if round_number % 2 == 1 else tuple(reversed(ROUND))
