"""The lab's catalog search, one definition for every locustfile (locust puts a locustfile's
folder on the import path): a category's products in stock within a price window, cheapest first.
A window is the lab's ``[category, lowest low, highest low, shortest span, longest span]``."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


def search_path(window: Sequence[Any]) -> str:
    category, low_from, low_to, span_from, span_to = window
    low = random.randint(low_from, low_to)
    high = low + random.randint(span_from, span_to)
    return (
        f"/products?category={category}&min_price={low}&max_price={high}"
        "&in_stock=true&sort=price_asc&limit=20"
    )
