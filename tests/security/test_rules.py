"""Who may do what, through the gateway (docs/security.md): each test fails when its rule goes."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.order.tests.integration.helpers import assert_problem, body, create, new_customer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def product(platform) -> str:
    with platform.client() as admin:
        return str(create(admin, stock=1000)["id"])


def _customer(platform, customer: str) -> httpx.Client:
    return platform.client(token=platform.customer_token(customer))


def test_anonymous_callers_browse_and_search_only(platform, product) -> None:
    with platform.client(token=None) as anon:
        assert anon.get(f"/products/{product}").status_code == 200
        assert anon.get("/products", params={"q": "test"}).status_code == 200
        assert_problem(anon.post("/products", json={"sku": "X"}), 401, "Authorization")
        assert_problem(anon.put(f"/products/{product}/stock", json={"stock": 1}), 401,
                       "Authorization")
        assert_problem(anon.get("/orders"), 401, "Authorization")
        assert_problem(anon.post("/orders", json=body([(product, 1)])), 401, "Authorization")
        answer = anon.get(f"/orders/{uuid.uuid4()}")
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_token_that_does_not_verify_is_refused_even_where_anonymous_may_read(
    platform, product
) -> None:
    real = platform.customer_token(new_customer())
    head, claims, signature = real.split(".")
    tampered = f"{head}.{claims}.{signature[:-4]}AAAA"
    for token in (tampered, "not.a.jwt", f"{head}.{claims}."):
        with platform.client(token=token) as forged:
            assert_problem(forged.get(f"/products/{product}"), 401, "Authorization")


def test_customers_cannot_write_the_catalog(platform, product) -> None:
    with _customer(platform, new_customer()) as customer:
        assert_problem(customer.post("/products", json={"sku": "X"}), 403, "Authorization")
        assert_problem(customer.delete(f"/products/{product}"), 403, "Authorization")
        assert_problem(customer.put(f"/products/{product}/stock", json={"stock": 1}), 403,
                       "Authorization")
        assert_problem(customer.post(f"/products/{product}/stock/adjustments", json={"delta": 1}),
                       403, "Authorization")


def test_a_customer_orders_as_themselves(platform, product) -> None:
    me = new_customer()
    with _customer(platform, me) as customer:
        named = customer.post("/orders", json=body([(product, 1)], me))
        assert named.status_code == 202, named.text
        omitted = body([(product, 1)])
        del omitted["customer_id"]
        implied = customer.post("/orders", json=omitted)
        assert implied.status_code == 202, implied.text
        assert implied.json()["customer_id"] == me
        someone_else = customer.post("/orders", json=body([(product, 1)], new_customer()))
        assert_problem(someone_else, 403, "customer_id")


def test_a_customer_sees_only_their_own_orders(platform, product) -> None:
    alice, bob = new_customer(), new_customer()
    with _customer(platform, alice) as a, _customer(platform, bob) as b:
        order = a.post("/orders", json=body([(product, 1)], alice)).json()["id"]
        b.post("/orders", json=body([(product, 1)], bob)).raise_for_status()
        assert a.get(f"/orders/{order}").status_code == 200
        for path in (f"/orders/{order}", f"/orders/{order}/events", f"/orders/{order}/updates"):
            assert_problem(b.get(path), 404, "order_id")
        assert_problem(b.get(f"/orders/{order}", params={"wait": 1}), 404, "order_id")
        assert_problem(b.post(f"/orders/{order}/cancel"), 404, "order_id")
        assert a.get(f"/orders/{order}").json()["status"] != "CANCELLED"  # bob's cancel did nothing
        mine = a.get("/orders").json()["items"]
        assert {o["customer_id"] for o in mine} == {alice}
        assert_problem(a.get("/orders", params={"customer_id": bob}), 403, "customer_id")
        assert a.post(f"/orders/{order}/cancel").status_code in (200, 409)


def test_operators_list_everyone_s_orders(platform, product) -> None:
    alice, bob = new_customer(), new_customer()
    for who in (alice, bob):
        with _customer(platform, who) as c:
            c.post("/orders", json=body([(product, 1)], who)).raise_for_status()
    with platform.client() as admin:
        listed = admin.get("/orders", params={"limit": 100}).json()["items"]
        assert {alice, bob} <= {o["customer_id"] for o in listed}
        assert admin.get("/orders", params={"customer_id": bob}).json()["items"][0][
            "customer_id"] == bob


def test_the_reservations_api_is_internal(platform, product) -> None:
    reservation = {"order_id": str(uuid.uuid4()), "lines": [{"product_id": product, "quantity": 1}]}
    with platform.client() as admin:  # an operator's token through the gateway: not routed
        assert admin.post("/reservations", json=reservation).status_code == 404
    for token in (None, platform.admin_token()):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        direct = httpx.post(f"{platform.url('product')}/reservations", json=reservation,
                            headers=headers, timeout=10)
        assert_problem(direct, 401, "X-Service-Credential")
        wrong = httpx.post(f"{platform.url('product')}/reservations", json=reservation,
                           headers={**headers, "X-Service-Credential": "guess"}, timeout=10)
        assert_problem(wrong, 401, "X-Service-Credential")
    with platform.client("product") as service:  # the credential order-service holds
        assert service.post("/reservations", json=reservation).status_code == 201


def test_sync_orders_reach_the_reservations_api_with_the_credential(platform, product) -> None:
    me = new_customer()
    with _customer(platform, me) as customer:
        placed = customer.post("/orders", params={"mode": "sync"}, json=body([(product, 1)], me))
    assert placed.status_code in (201, 402), placed.text  # reserved; then paid or declined


def test_a_nul_in_a_search_is_a_400_problem_not_a_500(platform) -> None:
    with platform.client(token=None) as anon:
        for params in ({"q": "\x00"}, {"category": "a\x00b"}, {"brand": "\x07"}):
            field = next(iter(params)) if "q" not in params else "q"
            assert_problem(anon.get("/products", params=params), 400, field)
