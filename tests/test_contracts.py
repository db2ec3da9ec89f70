"""The written contracts: every event a service publishes reads as its contract, the consumers
refuse what does not fit, and docs/events.md says what the code says."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from services.order.adapters.event_store import StoredEvent, event_id
from services.order.adapters.recorder import envelope
from services.order.domain import events as ev
from services.order.tests.unit.order_builders import ORDER, all_events_of_one_order
from services.product.domain.model import Product
from shopstream import contracts, events
from shopstream.contracts import doc, orders, products, stock
from shopstream.contracts.topics import ORDER_EVENTS, PRODUCT_EVENTS, STOCK_EVENTS


def test_the_event_docs_are_generated_from_the_contracts() -> None:
    text = doc.DOC.read_text()
    assert doc.rewritten(text) == text, "run: python -m shopstream.contracts.doc"


def test_every_order_event_the_service_publishes_reads_as_its_contract() -> None:
    found = set()
    for version, domain_event in enumerate(all_events_of_one_order(), start=1):
        stored = StoredEvent(ORDER, version, event_id(ORDER, version), domain_event)
        read = contracts.read(ORDER_EVENTS, envelope(stored))
        assert read is not None and type(read).__name__ == domain_event.name
        assert read.order_id == ORDER
        found.add(type(read))
    assert found == {c for c in vars(orders).values()
                     if isinstance(c, type) and issubclass(c, orders.OrderEvent)
                     and c is not orders.OrderEvent}  # fmt: skip
    assert set(ev.EVENT_TYPES) == {c.__name__ for c in found}, "a domain event has no contract"


def test_product_events_read_as_their_contracts() -> None:
    product = Product(id=str(uuid.uuid4()), sku="LAMP-1", name="Lamp", description="",
                      category="Office", brand="Lumo", price_cents=2450, stock=3)  # fmt: skip
    created = events.new_event("ProductCreated", product.id, product.as_event_data())
    read = contracts.read(PRODUCT_EVENTS, created)
    assert isinstance(read, products.ProductCreated) and read.price_cents == 2450
    changed = events.new_event("StockChanged", product.id, {
        "id": product.id, "stock": 2, "previous": 3, "delta": -1, "reason": "r", "version": 2})
    assert isinstance(contracts.read(PRODUCT_EVENTS, changed), products.StockChanged)


def test_a_stock_answer_goes_and_comes_back_as_the_same_struct() -> None:
    answer = stock.StockReserved(order_id=ORDER, occurred_at=msgspec.json.decode(b'"2026-12-05T10:00:00Z"', type=__import__("datetime").datetime),
                                 lines=[stock.StockLine(product_id=uuid.uuid4(), quantity=2)])  # fmt: skip
    wire = events.decode(events.encode(events.new_event("StockReserved", str(ORDER), contracts.data(answer))))
    assert contracts.read(STOCK_EVENTS, wire) == answer


def test_an_event_that_does_not_fit_its_contract_is_unreadable() -> None:
    broken = events.new_event("StockReserved", str(ORDER), {"order_id": str(ORDER)})
    with pytest.raises(contracts.Unreadable, match="missing required field"):
        contracts.read(STOCK_EVENTS, broken)
    newer = msgspec.structs.replace(
        events.new_event("OrderConfirmed", str(ORDER), {"order_id": str(ORDER),
                                                         "occurred_at": events.now_iso()}),
        version=2,
    )  # fmt: skip
    with pytest.raises(contracts.Unreadable, match="version 2"):
        contracts.read(ORDER_EVENTS, newer)


def test_a_type_no_contract_names_is_left_to_the_consumer() -> None:
    assert contracts.read(STOCK_EVENTS, events.new_event("Unheard", "x", {})) is None
