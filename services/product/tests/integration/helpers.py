"""Small helpers for the product-service integration tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def new_product(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10].upper()
    body: dict[str, Any] = {
        "sku": f"T-{tag}",
        "name": f"Test Product {tag}",
        "description": "a product made by a test",
        "category": f"cat-{tag}",
        "brand": "Testbrand",
        "price": 10.0,
        "stock": 5,
    }
    body.update(overrides)
    return body


def create(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = client.post("/products", json=new_product(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_problem(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    fields = [e["field"] for e in body.get("errors", [])]
    assert field in fields, f"{field!r} not named in {fields}: {body}"
