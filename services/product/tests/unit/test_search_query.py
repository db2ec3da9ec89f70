from __future__ import annotations

import pytest

from services.product.domain.model import CatalogError
from services.product.domain.search import build_query, encode_cursor


def test_default_sort_depends_on_text() -> None:
    assert build_query().effective_sort == "newest"
    assert build_query(text="lamp").effective_sort == "relevance"


def test_cursor_round_trip() -> None:
    q = build_query(category="Office", sort="price_asc")
    cursor = encode_cursor(q, 1999, "abc")
    again = build_query(category="Office", sort="price_asc", cursor=cursor)
    assert again.after == (1999, "abc")


def test_cursor_keeps_float_rank_exactly() -> None:
    q = build_query(text="lamp")
    rank = 0.1 + 0.2
    assert build_query(text="lamp", cursor=encode_cursor(q, rank, "x")).after == (rank, "x")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"sort": "cheapest"}, "sort"),
        ({"sort": "relevance"}, "sort"),
        ({"min_price_cents": 500, "max_price_cents": 100}, "min_price"),
        ({"cursor": "%%%"}, "cursor"),
        ({"text": "x" * 201}, "q"),
    ],
)
def test_bad_queries_name_the_field(kwargs, field) -> None:
    with pytest.raises(CatalogError) as info:
        build_query(**kwargs)
    assert field in [f for f, _ in info.value.errors]


def test_cursor_from_other_filters_is_refused() -> None:
    cursor = encode_cursor(build_query(category="Office"), "2026-01-01T00:00:00+00:00", "id")
    with pytest.raises(CatalogError):
        build_query(category="Garden", cursor=cursor)


@pytest.mark.parametrize("field,kwargs", [
    ("q", {"text": "lamp\x00"}), ("q", {"text": "\x1b[31m"}), ("category", {"category": "a\x00"}),
    ("brand", {"brand": "\x7f"}), ("cursor", {"cursor": "\x00"}),
])  # fmt: skip
def test_control_characters_are_refused_by_field(field, kwargs) -> None:
    with pytest.raises(CatalogError) as refused:
        build_query(**kwargs)
    assert field in [f for f, _ in refused.value.errors]
