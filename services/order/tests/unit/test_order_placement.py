"""Placement rules: parsing a request body into PlaceOrder, with every error and its field path."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from services.order.domain.errors import FieldError, InvalidOrder
from services.order.domain.placement import (
    MAX_LINES,
    MAX_QUANTITY,
    order_id_for,
    parse_place_order,
    price_lines,
    validate_place_order,
)
from services.order.domain.values import LineItem, OrderLine, ProcessingMode
from services.order.tests.unit.order_builders import (
    CUSTOMER,
    P1,
    P2,
    P3,
    PRICES,
    address,
    command,
    payload,
)


def errors_of(body: Any, **kw: Any) -> list[FieldError]:
    with pytest.raises(InvalidOrder) as caught:
        parse_place_order(body, **kw)
    return list(caught.value.errors)


def fields_of(body: Any, **kw: Any) -> list[str]:
    return [e.field for e in errors_of(body, **kw)]


def line(product: UUID | str, quantity: Any) -> dict[str, Any]:
    return {"product_id": str(product), "quantity": quantity}


def test_a_valid_body_becomes_a_typed_command():
    cmd = parse_place_order(payload(), idempotency_key="retry-42")

    assert cmd.customer_id == CUSTOMER
    assert cmd.lines == (LineItem(P1, 2), LineItem(P2, 1))
    assert cmd.shipping_address == address()
    assert cmd.mode is ProcessingMode.ASYNC
    assert cmd.idempotency_key == "retry-42"
    assert validate_place_order(cmd) == ()


def test_mode_comes_from_the_argument_then_the_body_then_the_default():
    assert parse_place_order(payload(mode="sync")).mode is ProcessingMode.SYNC
    assert parse_place_order(payload(mode="sync"), mode="async").mode is ProcessingMode.ASYNC
    default = parse_place_order(payload(), default_mode=ProcessingMode.SYNC)
    assert default.mode is ProcessingMode.SYNC
    assert errors_of(payload(mode="batch")) == [FieldError("mode", "must be one of: sync, async")]


def test_upper_case_uuids_are_accepted_and_equal_lower_case_ones():
    cmd = parse_place_order(payload(customer_id=str(CUSTOMER).upper()))
    assert cmd.customer_id == CUSTOMER


@pytest.mark.parametrize("body", [None, [], "order", 42])
def test_a_body_that_is_not_an_object_is_refused(body: Any):
    assert errors_of(body) == [FieldError("body", "must be a JSON object")]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "an order needs at least one line"),
        (None, "is required"),
        ("P1 x 2", "must be a list of {product_id, quantity}"),
        ({"product_id": str(P1), "quantity": 1}, "must be a list of {product_id, quantity}"),
    ],
)
def test_lines_must_be_a_non_empty_list(lines: Any, message: str):
    assert errors_of(payload(lines=lines)) == [FieldError("lines", message)]


def test_missing_lines_key_is_reported():
    body = payload()
    del body["lines"]
    assert errors_of(body) == [FieldError("lines", "is required")]


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (0, "must be at least 1"),
        (-3, "must be at least 1"),
        (MAX_QUANTITY + 1, f"must be at most {MAX_QUANTITY}"),
        (1.5, "must be a whole number"),
        (2.0, "must be a whole number"),
        ("2", "must be a whole number"),
        (True, "must be a whole number"),
        (None, "is required"),
    ],
)
def test_bad_quantities_are_reported_on_their_line(quantity: Any, message: str):
    body = payload(lines=[line(P1, 1), line(P2, 1), line(P3, quantity)])
    assert errors_of(body) == [FieldError("lines[2].quantity", message)]


@pytest.mark.parametrize("quantity", [1, MAX_QUANTITY])
def test_quantity_bounds_are_inclusive(quantity: int):
    assert parse_place_order(payload(lines=[line(P1, quantity)])).lines[0].quantity == quantity


def test_huge_orders_are_refused_and_the_limit_itself_is_fine():
    products = [UUID(int=n + 1) for n in range(MAX_LINES + 1)]
    at_limit = payload(lines=[line(p, 1) for p in products[:MAX_LINES]])
    assert len(parse_place_order(at_limit).lines) == MAX_LINES

    over = payload(lines=[line(p, 1) for p in products])
    expected = f"at most {MAX_LINES} lines per order, got {MAX_LINES + 1}"
    assert errors_of(over) == [FieldError("lines", expected)]


def test_duplicate_products_are_reported_on_each_repeat():
    body = payload(lines=[line(P1, 1), line(P2, 1), line(P1, 3), line(str(P2).upper(), 1)])
    assert errors_of(body) == [
        FieldError("lines[2].product_id", "duplicate of lines[0].product_id; one line per product"),
        FieldError("lines[3].product_id", "duplicate of lines[1].product_id; one line per product"),
    ]


@pytest.mark.parametrize(
    "bad_id",
    ["123", "not-a-uuid", "a1000000000040008000000000000001",
     "{a1000000-0000-4000-8000-000000000001}", "a1000000-0000-4000-8000-00000000000g", 17, ""],
)
def test_malformed_ids_are_reported(bad_id: Any):
    body = payload(customer_id=bad_id, lines=[{"product_id": bad_id, "quantity": 1}])
    message = "must be a UUID (8-4-4-4-12 hex digits)"
    assert errors_of(body) == [
        FieldError("customer_id", message), FieldError("lines[0].product_id", message)
    ]


def test_a_line_that_is_not_an_object_is_reported():
    body = payload(lines=[line(P1, 1), "P2"])
    assert errors_of(body) == [
        FieldError("lines[1]", "must be an object with product_id and quantity")
    ]


@pytest.mark.parametrize("field", ["name", "line1", "city", "postal_code", "country"])
def test_required_address_fields(field: str):
    body = payload()
    del body["shipping_address"][field]
    assert errors_of(body) == [FieldError(f"shipping_address.{field}", "is required")]


@pytest.mark.parametrize("field", ["name", "line1", "city", "postal_code"])
def test_blank_address_fields_are_refused(field: str):
    body = payload()
    body["shipping_address"][field] = "   "
    assert errors_of(body) == [FieldError(f"shipping_address.{field}", "must not be blank")]


@pytest.mark.parametrize(
    ("field", "limit"), [("name", 200), ("line1", 200), ("line2", 200), ("city", 100),
                         ("postal_code", 16)],
)
def test_oversized_address_fields_are_refused(field: str, limit: int):
    body = payload()
    body["shipping_address"][field] = "x" * limit
    parse_place_order(body)
    body["shipping_address"][field] = "x" * (limit + 1)
    assert errors_of(body) == [
        FieldError(f"shipping_address.{field}", f"must be at most {limit} characters")
    ]


def test_address_text_must_be_text_without_control_characters():
    body = payload()
    body["shipping_address"] |= {"name": "Ada\x00", "city": 42, "line2": "Flat 3\n"}
    assert errors_of(body) == [
        FieldError("shipping_address.name", "must not contain control characters"),
        FieldError("shipping_address.line2", "must not contain control characters"),
        FieldError("shipping_address.city", "must be a string"),
    ]


def test_line2_is_optional_and_unicode_text_is_fine():
    body = payload()
    body["shipping_address"] |= {"name": "Zoë Ørsted-Müller", "line2": "Flat 3"}
    cmd = parse_place_order(body)
    assert cmd.shipping_address.name == "Zoë Ørsted-Müller"
    assert cmd.shipping_address.line2 == "Flat 3"


@pytest.mark.parametrize("country", ["de", "XX", "DEU", "D", "", 49, "UK"])
def test_country_must_be_an_assigned_alpha2_code(country: Any):
    body = payload()
    body["shipping_address"]["country"] = country
    assert fields_of(body) == ["shipping_address.country"]


@pytest.mark.parametrize("country", ["DE", "US", "JP", "AX", "SS", "GB"])
def test_assigned_country_codes_pass(country: str):
    body = payload()
    body["shipping_address"]["country"] = country
    assert parse_place_order(body).shipping_address.country == country


@pytest.mark.parametrize("address_value", [None, "Baker Street", ["GB"]])
def test_shipping_address_must_be_an_object(address_value: Any):
    assert fields_of(payload(shipping_address=address_value)) == ["shipping_address"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve", "tab\tkey"])
def test_bad_idempotency_keys_are_refused(key: str):
    assert fields_of(payload(), idempotency_key=key) == ["idempotency_key"]


def test_all_errors_are_collected_not_just_the_first():
    body = {
        "customer_id": "nope",
        "lines": [line(P1, 0), line("bad", 2), line(P1, 1), {"quantity": 1}],
        "shipping_address": {"name": "", "line1": "1 Road", "city": "x" * 101,
                             "postal_code": "1", "country": "gb"},
        "mode": "later",
    }
    assert fields_of(body, idempotency_key="") == [
        "customer_id",
        "lines[0].quantity",
        "lines[1].product_id",
        "lines[2].product_id",
        "lines[3].product_id",
        "shipping_address.name",
        "shipping_address.city",
        "shipping_address.country",
        "mode",
        "idempotency_key",
    ]


def test_invalid_order_lists_its_errors_in_the_message():
    with pytest.raises(InvalidOrder, match=r"lines: an order needs at least one line"):
        parse_place_order(payload(lines=[]))


def test_validate_checks_a_command_built_in_code():
    assert validate_place_order(command()) == ()
    bad = command(((P1, 0), (P1, 5)), shipping_address=address(country="gb"))
    assert [e.field for e in validate_place_order(bad)] == [
        "lines[0].quantity", "lines[1].product_id", "shipping_address.country"
    ]
    assert [e.field for e in validate_place_order(command(()))] == ["lines"]


def test_price_lines_uses_the_product_service_prices():
    assert price_lines(command(), PRICES) == (OrderLine(P1, 2, 1250), OrderLine(P2, 1, 399))


def test_unknown_products_are_field_errors():
    with pytest.raises(InvalidOrder) as caught:
        price_lines(command(((P1, 1), (P3, 1), (P2, 1))), {P1: 100})
    assert caught.value.errors == (
        FieldError("lines[1].product_id", "unknown product"),
        FieldError("lines[2].product_id", "unknown product"),
    )


@pytest.mark.parametrize("price", [-1, 1.5, "12", True])
def test_a_nonsense_price_from_the_product_service_is_a_bug_not_a_field_error(price: Any):
    with pytest.raises(ValueError, match="unit price"):
        price_lines(command(((P1, 1),)), {P1: price})


def test_fingerprint_ignores_line_order_mode_and_key_but_not_content():
    base = command(((P1, 2), (P2, 1)))
    assert base.fingerprint() == command(((P2, 1), (P1, 2))).fingerprint()
    same = command(mode=ProcessingMode.SYNC, idempotency_key="k")
    assert base.fingerprint() == same.fingerprint()
    assert base.fingerprint() != command(((P1, 3), (P2, 1))).fingerprint()
    assert base.fingerprint() != command(shipping_address=address(city="Paris")).fingerprint()
    assert base.fingerprint() != command(customer=UUID(int=7)).fingerprint()


def test_order_id_for_a_keyed_request_is_stable_and_distinct():
    assert order_id_for(CUSTOMER, "k1") == order_id_for(CUSTOMER, "k1")
    assert order_id_for(CUSTOMER, "k1") != order_id_for(CUSTOMER, "k2")
    assert order_id_for(CUSTOMER, "k1") != order_id_for(UUID(int=7), "k1")
