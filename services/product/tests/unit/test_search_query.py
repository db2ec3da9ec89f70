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


def test_the_encoded_search_result_is_the_documented_one_field_for_field() -> None:
    from services.product.entrypoints.schemas import SearchResult
    from services.product.entrypoints.search_routes import _EncodedResult

    assert _EncodedResult.__struct_fields__ == SearchResult.__struct_fields__
    assert _EncodedResult.__struct_defaults__ == SearchResult.__struct_defaults__


@pytest.mark.parametrize(
    "query_string",
    [
        b"category=Office&unknown=1",  # a name the route ignores: the route answers
        b"category=Office&category=Garden",  # repeated
        b"in_stock=yes",  # a bool the route may read its own way
        b"in_stock=1",
        b"limit=-1",
        b"limit=ten",
        b"limit=0",  # invalid: the route's 400 names it
        b"min_price=1.234",
        b"sort=cheapest",
        b"q=%ff",  # not UTF-8
        "q=caf\u00e9".encode(),  # not ASCII on the wire
        b"cursor=not-a-cursor",
    ],
)
def test_an_unusual_query_string_is_left_to_the_route(
    query_string: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.product.entrypoints import search_routes

    _page_size_max(monkeypatch)
    assert search_routes.strict_query(query_string) is None


def test_a_plain_query_string_reads_as_the_route_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.product.entrypoints import search_routes

    _page_size_max(monkeypatch)
    query = search_routes.strict_query(
        b"q=desk+lamp%21&category=Office&min_price=10&max_price=25.50&in_stock=true"
        b"&sort=price_asc&limit=5&facets=false"
    )
    assert query == build_query(
        text="desk lamp!", category="Office", min_price_cents=1000, max_price_cents=2550,
        in_stock=True, sort="price_asc", limit=5,
    )  # fmt: skip
    assert search_routes.strict_query(b"") == build_query()
    assert search_routes.strict_query(b"min_price=&brand=Acme") == build_query(brand="Acme")


def _page_size_max(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from services.product.entrypoints import state as runtime
    from shopstream.config import Settings

    monkeypatch.setattr(runtime, "STATE", SimpleNamespace(settings=Settings()), raising=False)
