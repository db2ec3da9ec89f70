"""How long and how hard each test runs.

- ``plan``: the seed's test plan exactly: PT-01 10/50/100/500 users x 5 min; PT-02 100/500/1000
  users x 10 min per mode; PT-03 1000 users x 15 min at 1/2/4/8 instances; PT-04 500 users placing
  async orders x 10 min at 1/3/6/12 partitions; PT-05 50 -> 1000 users for 2 min -> 50. About
  7 hours of load with setup between steps: run it in parts (``--resume``). The strategy
  comparisons the plan asks for without durations: PT-03b 1000 users x 5 min per balancing
  strategy at 2 and 4 instances, PT-04b 500 users x 10 min per partitioning strategy.
- ``full``: the plan's users (but 200 in PT-03), instances and partitions with 60 s steps and a
  constant order rate in PT-04: about an hour, the plan's shape at a fraction of its length.
- ``quick``: the same shape in about 25 minutes on a 2-core machine, 10-15 s steps.
- ``smoke``: seconds per step, for the end-to-end test of the lab itself (its figures mean nothing).
"""

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
    pt04_rate: float  # async orders per second, open loop (when pt04_users is 0)
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
    pt04_users: int = 0  # closed-loop users placing async orders instead of a constant rate
    # PT-07 faults under load: a baseline, then each fault with this window before the next
    pt07_users: int = 50
    pt07_think: float = 0.5
    pt07_baseline_seconds: float = 20
    pt07_window_seconds: float = 40
    # PT-03b gateway balancing: PT-03's mix at these instance counts under each strategy
    pt03b_instances: tuple[int, ...] = (2, 4)
    pt03b_strategies: tuple[str, ...] = ("least_conn", "round_robin", "random_two", "customer_hash")
    pt03b_seconds: float = 15
    pt03b_users: int = 0  # 0: PT-03's users
    # PT-04b partitioning strategies: PT-04's load (rate or users, seconds) keyed by each
    pt04b_strategies: tuple[str, ...] = ("order_id", "customer_id", "product_id")
    # rounds of each strategy comparison, the strategies' order reversed every other round; the
    # figures compared are the medians (one round's order would favour whichever runs on the
    # quieter moment of a shared machine)
    strategy_rounds: int = 2


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
    pt07_users=5,
    pt07_baseline_seconds=6,
    pt07_window_seconds=8,
    pt03b_instances=(2,),
    pt03b_seconds=2,
    strategy_rounds=1,
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

# The plan's users, instances and partitions, steps of 60 s: its shape, not its durations.
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
    pt07_users=100,
    pt07_baseline_seconds=60,
    pt07_window_seconds=90,
    pt03b_seconds=60,
)

# The growth comparison (docs/performance/growth.md): only the steps compared on the young and
# the large data set, PT-01 at 100 users and PT-02 at 100 users then open loop, 30 s each.
GROWTH = replace(
    QUICK,
    name="growth",
    ceiling_rounds=1,
    pt01_users=(100,),
    pt01_seconds=30,
    pt02_users=(100,),
    pt02_seconds=20,
    pt02_open_seconds=30,
)

MINUTE = 60.0

# The seed's test plan, users and durations as written. The base and recovery phases of PT-05 are
# not given there: 5 min each, long enough to see the recovery settle.
PLAN = replace(
    FULL,
    name="plan",
    pt01_seconds=5 * MINUTE,
    pt02_seconds=10 * MINUTE,
    pt02_open_seconds=10 * MINUTE,
    pt03_users=1000,
    pt03_seconds=15 * MINUTE,
    pt03b_seconds=5 * MINUTE,  # the plan gives none: 4 strategies x 2 instance counts, 40 min
    strategy_rounds=1,
    pt04_users=500,
    pt04_seconds=10 * MINUTE,
    pt05_base_users=50,
    pt05_peak_users=1000,
    pt05_base_seconds=5 * MINUTE,
    pt05_peak_seconds=2 * MINUTE,
    pt05_recovery_seconds=5 * MINUTE,
    drain_timeout=1800,
)

PROFILES = {p.name: p for p in (SMOKE, QUICK, FULL, PLAN, GROWTH)}
