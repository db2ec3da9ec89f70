"""`shopstream bench ...`: benchmarks through the gateway, as ratios to ceilings measured in the
same run on the same machine (see docs/performance/README.md).

One module per concern; ``products`` runs the one benchmark there is:

* ``products``: ``shopstream bench products``, the run from start to end and one measurement;
* ``targets``: what it measures (two reads, their ceilings) and in which order;
* ``ceilings``: nginx's fixed response (ceiling A) and pgbench running the same SQL (ceiling B);
* ``queries``: the search's price windows and the SQL pgbench runs;
* ``catalog``: the seeded products the reads draw from;
* ``load``: running a load generator (wrk, pgbench) and reading what wrk measured;
* ``cpu``: CPU from /proc, per process, process tree and machine;
* ``platform_probes``: readiness, processes, gateway answers and cache counters of the platform;
* ``summary`` and ``report``: medians and ratios over rounds, and what a run prints;
* ``run_info``: run id, git revision, machine and tool versions (the lab records them too).

The names below stay importable from ``shopstream_tools.bench``: the lab and the tests use them.
"""

from shopstream_tools.bench.catalog import BENCH_SCHEMA, SEEDED_PRODUCTS, SEEDED_SKU
from shopstream_tools.bench.ceilings import (
    PGBENCH_CLIENTS,
    PGBENCH_THREADS,
    parse_pgbench,
    parse_pgbench_log,
)
from shopstream_tools.bench.cpu import (
    CpuSampler,
    ProcTimes,
    cores,
    group_ticks,
    parse_cpu_line,
    parse_proc_stat,
    read_proc_stats,
    tree,
)
from shopstream_tools.bench.load import (
    USER_AGENT,
    WRK_DIR,
    WRK_THREADS,
    LoadResult,
    latency_summary,
    parse_wrk,
    percentile,
    run_measured,
)
from shopstream_tools.bench.platform_probes import (
    gateway_statuses,
    non_2xx,
    parse_cache_lookups,
    platform_problem,
)
from shopstream_tools.bench.products import (
    ACCESS_LOG_FLUSH_SECONDS,
    PAUSE_SECONDS,
    WARMUP_SECONDS,
    Bench,
    run_product_benchmark,
)
from shopstream_tools.bench.queries import (
    SEARCH_PAGE,
    PriceWindow,
    by_id_script,
    pgbench_statement,
    price_windows,
    search_script,
    windows_file_text,
)
from shopstream_tools.bench.report import OTHER_CORES_WARNING, cpu_table, table
from shopstream_tools.bench.run_info import RESULTS_DIR, git_revision, machine_info, run_id
from shopstream_tools.bench.run_info import command_output as _command_output
from shopstream_tools.bench.summary import median, per_round_ratios, ratio, summarize
from shopstream_tools.bench.targets import (
    BY_ID,
    EQUIVALENT,
    FIXED,
    LABELS,
    PG_BY_ID,
    PG_SEARCH,
    ROUND,
    SEARCH,
    round_order,
)

__all__ = [
    "ACCESS_LOG_FLUSH_SECONDS",
    "BENCH_SCHEMA",
    "BY_ID",
    "EQUIVALENT",
    "FIXED",
    "LABELS",
    "OTHER_CORES_WARNING",
    "PAUSE_SECONDS",
    "PGBENCH_CLIENTS",
    "PGBENCH_THREADS",
    "PG_BY_ID",
    "PG_SEARCH",
    "RESULTS_DIR",
    "ROUND",
    "SEARCH",
    "SEARCH_PAGE",
    "SEEDED_PRODUCTS",
    "SEEDED_SKU",
    "USER_AGENT",
    "WARMUP_SECONDS",
    "WRK_DIR",
    "WRK_THREADS",
    "Bench",
    "CpuSampler",
    "LoadResult",
    "PriceWindow",
    "ProcTimes",
    "_command_output",
    "by_id_script",
    "cores",
    "cpu_table",
    "gateway_statuses",
    "git_revision",
    "group_ticks",
    "latency_summary",
    "machine_info",
    "median",
    "non_2xx",
    "parse_cache_lookups",
    "parse_cpu_line",
    "parse_pgbench",
    "parse_pgbench_log",
    "parse_proc_stat",
    "parse_wrk",
    "per_round_ratios",
    "percentile",
    "pgbench_statement",
    "platform_problem",
    "price_windows",
    "ratio",
    "read_proc_stats",
    "round_order",
    "run_id",
    "run_measured",
    "run_product_benchmark",
    "search_script",
    "summarize",
    "table",
    "tree",
    "windows_file_text",
]
