"""Each service's /docs in real headless Chromium with no internet: Swagger UI comes from the
service itself (shopstream/static/swagger-ui), and renders the service's operations."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.observability import browser

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("service", "operations"),
    [
        ("product", ["GET /products", "POST /products"]),
        ("order", ["POST /orders", "GET /orders/{order_id}"]),
    ],
)
def test_docs_render_the_operations_offline(platform, service, operations) -> None:
    port = getattr(platform.settings, f"{service}_port")
    page = httpx.get(f"http://127.0.0.1:{port}/docs/", timeout=10)
    assert page.status_code == 200, page.text
    assert "cdn." not in page.text and "unpkg" not in page.text, "the docs page loads from the internet"
    dom = browser.dom(f"http://127.0.0.1:{port}/docs/", wait_ms=15_000, offline=True)
    rendered = {
        f"{m.group(1).upper()} {m.group(2)}"
        for m in re.finditer(
            r'opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', dom, re.DOTALL
        )
    }
    assert rendered, "Swagger UI rendered no operation"
    for op in operations:
        assert op in rendered, sorted(rendered)
