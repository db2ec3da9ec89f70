"""How long and how hard each test runs. ``full`` is the test plan's parameters; ``quick`` runs all
six in about 20 minutes on a 2-core machine with shorter steps; ``smoke`` is seconds per step,
for the end-to-end test of the lab itself (its figures mean nothing)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Profile:
    name: str
    catalog: int  # seeded products the reads draw from
    ceiling_seconds: float
    ceiling_rounds: int  # at the start, and again at the end when 2: medians
    kafka_records: int
    # PT-01 baseline: closed-loop users browsing, each with a think time
    pt01_users: tuple[int, ...]
    pt01_seconds: float
    pt01_think: float
    # PT-02 sync vs async: users placing orders; then open loop at half the smaller capacity
    pt02_users: tuple[int, ...]
    pt02_seconds: float
    pt02_think: float
    pt02_open_seconds: float
    # PT-03 horizontal scaling: instances of each service, mixed traffic at full speed
    pt03_instances: tuple[int, ...]
    pt03_users: int
    pt03_seconds: float
    # PT-04 partitions: async orders at a constant rate, then the backlog drains
    pt04_partitions: tuple[int, ...]
    pt04_rate: float
    pt04_seconds: float
    # PT-05 burst: base users, peak users for a while, base users again
    pt05_base_users: int
    pt05_peak_users: int
    pt05_base_seconds: float
    pt05_peak_seconds: float
    pt05_recovery_seconds: float
    pt05_think: float
    drain_timeout: float  # how long the audit waits for in-flight work to finish
    # PT-06 tracing cost: async orders, closed loop without think time, tracing off vs on
    pt06_users: int = 50
    pt06_seconds: float = 15
    pt06_repeats: int = 3  # of each setting; the report gives the medians


SMOKE = Profile(
    name="smoke",
    catalog=2_000,
    ceiling_seconds=1,
    ceiling_rounds=1,
    kafka_records=5_000,
    pt01_users=(5, 20),
    pt01_seconds=2,
    pt01_think=0.1,
    pt02_users=(10,),
    pt02_seconds=2,
    pt02_think=0.2,
    pt02_open_seconds=2,
    pt03_instances=(1, 2),
    pt03_users=10,
    pt03_seconds=2,
    pt04_partitions=(1, 3),  # ends where every other test runs: one topic rebuild less
    pt04_rate=20,
    pt04_seconds=2,
    pt05_base_users=5,
    pt05_peak_users=30,
    pt05_base_seconds=2,
    pt05_peak_seconds=3,
    pt05_recovery_seconds=4,
    pt05_think=0.2,
    drain_timeout=60,
    pt06_users=10,
    pt06_seconds=2,
    pt06_repeats=1,
)

QUICK = Profile(
    name="quick",
    catalog=100_000,
    ceiling_seconds=5,
    ceiling_rounds=2,
    kafka_records=200_000,
    pt01_users=(10, 50, 100, 500),
    pt01_seconds=15,
    pt01_think=0.1,
    pt02_users=(100, 500, 1000),
    pt02_seconds=10,
    pt02_think=1.0,  # a shopper places an order a second at most: bounds the backlog to drain
    pt02_open_seconds=15,
    pt03_instances=(1, 2, 4, 8),
    pt03_users=100,
    pt03_seconds=15,
    pt04_partitions=(1, 3, 6, 12),
    pt04_rate=100,
    pt04_seconds=10,
    pt05_base_users=50,
    pt05_peak_users=1000,
    pt05_base_seconds=20,
    pt05_peak_seconds=60,
    pt05_recovery_seconds=60,
    pt05_think=0.5,
    drain_timeout=180,
)

# The test plan's durations; the same users, instances and partitions as quick.
FULL = replace(
    QUICK,
    name="full",
    ceiling_seconds=15,
    kafka_records=1_000_000,
    pt01_seconds=60,
    pt02_seconds=60,
    pt02_open_seconds=60,
    pt03_users=200,
    pt03_seconds=60,
    pt04_rate=150,
    pt04_seconds=60,
    pt05_base_seconds=60,
    pt05_peak_seconds=120,
    pt05_recovery_seconds=180,
    drain_timeout=600,
    pt06_users=100,
    pt06_seconds=60,
)

PROFILES = {p.name: p for p in (SMOKE, QUICK, FULL)}
