"""HTTPS through the test platform's real gateway to the real services, trusting only the local CA
the platform made (docs/security.md#gateway-edge): the rules hold over TLS as over plain HTTP."""

from __future__ import annotations

import ssl
import uuid

import httpx
import pytest

from services.order.tests.integration.helpers import APPROVE, assert_problem, body, create

pytestmark = pytest.mark.integration


def https(platform, token: str | None = None) -> httpx.Client:
    ca = platform.settings.data_path / "gateway" / "tls" / "ca.crt"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"https://localhost:{platform.settings.gateway_tls_port}", headers=headers,
                        verify=ssl.create_default_context(cafile=str(ca)), timeout=30)  # fmt: skip


def test_customers_and_anonymous_callers_over_https(platform) -> None:
    with platform.client() as admin:
        product = str(create(admin, stock=5)["id"])
    with https(platform) as anonymous:
        found = anonymous.get(f"/products/{product}")
        assert found.status_code == 200 and found.extensions["http_version"] == b"HTTP/1.1"
        assert found.headers["strict-transport-security"] == "max-age=31536000"
        assert_problem(anonymous.get("/orders"), 401, "Authorization")
    with https(platform, platform.customer_token(APPROVE)) as customer:
        placed = customer.post("/orders", json=body([(product, 1)]),
                               headers={"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert placed.status_code in (201, 202), placed.text
        assert customer.get(f"/orders/{placed.json()['id']}").status_code == 200
        assert_problem(customer.post("/products", json={"sku": "TLS-1"}), 403, "Authorization")
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the local CA refuses
        httpx.get(f"https://localhost:{platform.settings.gateway_tls_port}/products")
