"""The reservations-held collector exports a reading only while it is fresh."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from services.product.adapters.reservation_metrics import Held, HeldCollector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def exported(collector: HeldCollector) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_a_fresh_reading_is_exported_a_stale_or_forgotten_one_is_not() -> None:
    clock = Clock()
    collector = HeldCollector(fresh_for=15, clock=clock)
    assert exported(collector) == {}, "a standby exports nothing, not zeros"
    collector.update(Held(reservations=3, oldest_age_seconds=42.5))
    clock.now += 15
    assert exported(collector) == {
        "product_reservations_held": 3,
        "product_reservation_oldest_held_age_seconds": 42.5,
    }
    clock.now += 0.1
    assert exported(collector) == {}, "a leader that stopped reading must not repeat its last figure"
    collector.update(Held(reservations=0, oldest_age_seconds=0))
    assert exported(collector)["product_reservations_held"] == 0
    collector.forget()
    assert exported(collector) == {}


def test_it_registers_and_renders_in_the_exposition_format() -> None:
    registry = CollectorRegistry()
    collector = HeldCollector()
    registry.register(collector)
    collector.update(Held(reservations=2, oldest_age_seconds=1.5))
    text = generate_latest(registry).decode()
    assert "# TYPE product_reservations_held gauge" in text
    assert "product_reservations_held 2.0" in text
    assert "product_reservation_oldest_held_age_seconds 1.5" in text
