"""Reservations held, for Prometheus and CloudWatch, read from the database by one process.

The figures are the database's, not a process's: if every process exported them, any sum across
instances would count them several times, and every scrape of every instance would query the table.
So each product consumer process runs ``sample_while``, but only the one holding an advisory lock on
the product database reads the table (every ``INTERVAL``) and exports; the others stand by. A leader
that dies releases the lock with its connection and a standby takes over within an interval; a
leader that lost its database stops exporting (the figures go stale, and stale figures are not
exported) rather than repeat its last reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.product.domain.reservation import HELD
from shopstream import db, emf
from shopstream.config import Settings
from shopstream.db import Connection

log = logging.getLogger(__name__)

SAMPLER_LOCK = 0x5E5E7D  # advisory lock key in the product database; the relays use 0x0B7B0C
INTERVAL = 5.0
SERVICE = "product"

EMF_HELD = emf.declare("ReservationsHeld", "Count", ("Service",), "sampled")
EMF_OLDEST = emf.declare("ReservationOldestHeldAgeSeconds", "Seconds", ("Service",), "sampled")


@dataclass(frozen=True)
class Held:
    reservations: int
    """Orders holding stock now (a reservation is all of an order's lines)."""
    oldest_age_seconds: float
    """How long the oldest of them has held it; 0 when none does."""


async def held(conn: Connection) -> Held:
    # the partial index reservations_held keeps this to the held rows, however many ended ones
    row = await conn.fetchrow(
        "SELECT count(DISTINCT order_id) AS n, extract(epoch FROM now() - min(created_at)) AS age"
        " FROM reservations WHERE status = $1",
        HELD,
    )
    assert row is not None
    return Held(int(row["n"]), max(0.0, float(row["age"] or 0)))


class HeldCollector(Collector):
    """Exports the last reading while it is fresh, nothing otherwise (a standby, a lost leader)."""

    def __init__(self, fresh_for: float = 3 * INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.fresh_for = fresh_for
        self.clock = clock
        self._reading: tuple[float, Held] | None = None

    def update(self, figures: Held) -> None:
        self._reading = (self.clock(), figures)

    def forget(self) -> None:
        self._reading = None

    def describe(self) -> Iterator[Metric]:
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        reading = self._reading
        fresh = reading is not None and self.clock() - reading[0] <= self.fresh_for
        yield from self._families(reading[1] if fresh and reading is not None else None)

    @staticmethod
    def _families(figures: Held | None) -> Iterator[Metric]:
        held_now = GaugeMetricFamily(
            "product_reservations_held", "Orders holding stock (read from the database)"
        )
        oldest = GaugeMetricFamily(
            "product_reservation_oldest_held_age_seconds",
            "Time the oldest held reservation has held its stock; 0 when none is held",
        )
        if figures is not None:
            held_now.add_metric([], figures.reservations)
            oldest.add_metric([], figures.oldest_age_seconds)
        yield held_now
        yield oldest


COLLECTOR = HeldCollector()
_registered = False


def _register() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(COLLECTOR)
        _registered = True


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _lead_and_sample(
    conn: asyncpg.Connection, stopping: asyncio.Event, interval: float, collector: HeldCollector
) -> None:
    if not await db.lead(conn, SAMPLER_LOCK, stopping, interval):  # meanwhile another exports
        return
    while not stopping.is_set():
        figures = await held(conn)
        collector.update(figures)
        dims = {"Service": SERVICE}
        emf.observe(EMF_HELD, dims, figures.reservations)
        emf.observe(EMF_OLDEST, dims, figures.oldest_age_seconds)
        await _pause(stopping, interval)


async def sample_while(
    settings: Settings,
    stopping: asyncio.Event,
    interval: float = INTERVAL,
    collector: HeldCollector | None = None,
) -> None:
    """Export the figures, if this process leads, until ``stopping``; never raises (the consumer
    beside it must not stop for a metric). ``collector``: the process's registered one unless given."""
    if collector is None:
        _register()
        collector = COLLECTOR
    while not stopping.is_set():
        try:
            # its own connection: the session's advisory lock is the leadership, held while it lives
            conn = await asyncpg.connect(
                settings.database_url(SERVICE),
                server_settings={"application_name": f"{SERVICE}-reservation-sampler"},
                command_timeout=10,  # a hung query ends; its stale reading is not exported meanwhile
            )
            try:
                await _lead_and_sample(conn, stopping, interval, collector)
            finally:
                collector.forget()
                await conn.close(timeout=5)
        except Exception as exc:
            log.warning("reservations held not sampled: %s", exc)
        await _pause(stopping, interval)
