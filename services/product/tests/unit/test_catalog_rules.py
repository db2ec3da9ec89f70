from __future__ import annotations

import pytest

from services.product.domain import model
from services.product.domain.model import CatalogError, InsufficientStock, StaleVersion

VALID = {
    "sku": "ABC-1",
    "name": "Lamp",
    "category": "Office",
    "brand": "Lumo",
    "price_cents": 1999,
    "stock": 4,
}


def test_new_product_trims_and_keeps_values() -> None:
    p = model.new_product("id-1", {**VALID, "name": "  Lamp  "})
    assert p.name == "Lamp" and p.version == 1 and p.etag == '"1"' and p.in_stock


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sku": "a"}, "sku"),
        ({"name": " "}, "name"),
        ({"price_cents": -1}, "price"),
        ({"stock": -1}, "stock"),
        ({"brand": "b" * 81}, "brand"),
        ({"description": "d" * 5001}, "description"),
    ],
)
def test_invalid_fields_are_named(change, field) -> None:
    with pytest.raises(CatalogError) as info:
        model.new_product("id", {**VALID, **change})
    assert field in [f for f, _ in info.value.errors]


def test_every_missing_field_is_reported_at_once() -> None:
    with pytest.raises(CatalogError) as info:
        model.new_product("id", {"name": "x"})
    assert {f for f, _ in info.value.errors} == {"sku", "category", "brand", "price", "stock"}


def test_revise_bumps_version_and_tracks_changes() -> None:
    p = model.new_product("id", VALID)
    r = model.revise(p, {"name": "Lamp", "price_cents": 2500}, expected_version=1)
    assert r.version == 2 and r.changed == ("price_cents",) and r.price_cents == 2500


def test_revise_refuses_stale_version_and_stock() -> None:
    p = model.new_product("id", VALID)
    with pytest.raises(StaleVersion):
        model.revise(p, {"name": "New"}, expected_version=7)
    with pytest.raises(CatalogError):
        model.revise(p, {"stock": 3}, expected_version=None)


def test_stock_adjustment_never_below_zero() -> None:
    p = model.new_product("id", VALID)
    assert model.adjust_stock(p, -4).stock == 0
    with pytest.raises(InsufficientStock):
        model.adjust_stock(p, -5)
    data = model.stock_changed_data(p, model.adjust_stock(p, 3), "delivery")
    assert data["delta"] == 3 and data["previous"] == 4 and data["stock"] == 7
