"""`shopstream bench products`: product reads through the gateway next to same-run ceilings.

One run measures, in interleaved rounds so drift hits every figure alike:

* ceiling A: nginx answering a fixed JSON response (the gateway's status port, ``/fixed``);
* ``GET /products/{id}`` through the gateway, ids drawn uniformly from the seeded catalog;
* a filtered search through the gateway (category, price window, in stock, cheapest first);
* ceiling B: pgbench running the SQL of each target against the same PostgreSQL.

HTTP load comes from wrk (``performance-tests/wrk/*.lua``), SQL load from pgbench. Figures are
reported as medians over rounds and as ratios to the ceilings of the same round, because absolute
figures on a shared 2-core machine drift. The load generator runs on the same cores as the system
under test, so its CPU (and every platform process's) is measured from /proc and reported beside
the figures. Raw results go to ``performance-tests/results/<run-id>/bench-products.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as pyplatform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT, Settings

WRK_DIR = PROJECT_ROOT / "performance-tests" / "wrk"
RESULTS_DIR = PROJECT_ROOT / "performance-tests" / "results"
SEEDED_PRODUCTS = 100_000
SEEDED_SKU = "^[A-Z]{3}-[0-9]{7}$"
WRK_THREADS = 2
PGBENCH_CLIENTS = 16
PGBENCH_THREADS = 2
WARMUP_SECONDS = 2
PAUSE_SECONDS = 2.0
# nginx flushes its buffered access log every second; read it only after that.
ACCESS_LOG_FLUSH_SECONDS = 1.5
USER_AGENT = "shopstream-bench"
# Warn when other work on the machine took more than this many cores during the measurements.
OTHER_CORES_WARNING = 0.2
SEARCH_PAGE = 20
BENCH_SCHEMA = "bench"

FIXED = "nginx-fixed"
BY_ID = "get-by-id"
SEARCH = "search"
PG_BY_ID = "pgbench-by-id"
PG_SEARCH = "pgbench-search"
# One round, in order (even rounds run it backwards): each target sits next to its ceilings.
ROUND = (FIXED, BY_ID, PG_BY_ID, SEARCH, PG_SEARCH)
LABELS = {
    FIXED: "nginx /fixed (ceiling A)",
    BY_ID: "GET /products/{id}",
    SEARCH: "GET /products?category&price&in_stock",
    PG_BY_ID: "pgbench PK read (ceiling B)",
    PG_SEARCH: "pgbench search SQL (ceiling B)",
}
# target -> its pgbench equivalent
EQUIVALENT = {BY_ID: PG_BY_ID, SEARCH: PG_SEARCH}


# --- parsing the tools' output ----------------------------------------------------------------
@dataclass
class LoadResult:
    """One measurement by wrk or pgbench, in common units."""

    requests: int
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


_WRK_JSON = re.compile(r"^BENCH_JSON (\{.*\})\s*$", re.MULTILINE)


def parse_wrk(output: str) -> LoadResult:
    """The JSON line that the scripts' done() prints (see performance-tests/wrk/common.lua)."""
    match = _WRK_JSON.search(output)
    if not match:
        raise ValueError("wrk printed no BENCH_JSON line (did the Lua script fail?)")
    data = json.loads(match.group(1))
    latency = {k: float(v) / 1000 for k, v in data["latency_us"].items()}
    return LoadResult(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        errors={f"wrk_{k}": int(v) for k, v in data["errors"].items()},
        latency_ms=latency,
    )


def _pgbench_number(output: str, pattern: str) -> float | None:
    match = re.search(pattern, output, re.MULTILINE)
    return float(match.group(1)) if match else None


def parse_pgbench(output: str) -> tuple[float, int, int]:
    """(tps without connection time, transactions processed, failed transactions)."""
    tps = _pgbench_number(output, r"^tps = ([\d.]+) \(without initial connection time\)")
    done = _pgbench_number(output, r"^number of transactions actually processed: (\d+)")
    if tps is None or done is None:
        raise ValueError("pgbench printed no tps / transactions (see its output)")
    failed = _pgbench_number(output, r"^number of failed transactions: (\d+)") or 0
    return tps, int(done), int(failed)


def parse_pgbench_log(lines: Iterable[str]) -> tuple[list[float], int]:
    """Latencies (ms) of the transactions in pgbench's per-transaction log, and how many failed.

    A line is ``client_id transaction_no time script_no time_epoch time_us [...]`` with the latency
    in microseconds; a failed transaction has ``failed`` (or ``skipped``) in place of it.
    """
    latencies: list[float] = []
    failed = 0
    for line in lines:
        parts = line.split()
        if len(parts) < 6:
            continue
        if parts[2].isdigit():
            latencies.append(int(parts[2]) / 1000)
        else:
            failed += 1
    return latencies, failed


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of values, sorted or not."""
    if not values:
        raise ValueError("percentile of nothing")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least the first
    return ordered[int(min(rank, len(ordered))) - 1]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    if not latencies_ms:
        return {}
    return {
        "mean": statistics.fmean(latencies_ms),
        "p50": percentile(latencies_ms, 50),
        "p90": percentile(latencies_ms, 90),
        "p99": percentile(latencies_ms, 99),
        "p99.9": percentile(latencies_ms, 99.9),
        "max": max(latencies_ms),
    }


def gateway_statuses(lines: Iterable[str], user_agent: str = USER_AGENT) -> Counter[int]:
    """Status codes of the benchmark's requests in the gateway's JSON access log lines."""
    statuses: Counter[int] = Counter()
    marker = f'"user_agent":"{user_agent}'
    for line in lines:
        if marker not in line:
            continue
        try:
            statuses[int(json.loads(line)["status"])] += 1
        except (ValueError, KeyError, TypeError):
            statuses[0] += 1
    return statuses


def non_2xx(statuses: Counter[int]) -> int:
    """Answers outside 2xx, leaving out 499 (wrk closing its connections at the end of a run)."""
    return sum(n for status, n in statuses.items() if not 200 <= status < 300 and status != 499)


def parse_cache_lookups(metrics: str) -> tuple[float, float]:
    """(hits, misses) from a product instance's Prometheus text."""
    found = dict.fromkeys(("hit", "miss"), 0.0)
    for match in re.finditer(
        r'^product_cache_lookups_total\{result="(hit|miss)"\} ([0-9.e+]+)$', metrics, re.MULTILINE
    ):
        found[match.group(1)] += float(match.group(2))
    return found["hit"], found["miss"]


# --- CPU accounting from /proc ------------------------------------------------------------------
@dataclass(frozen=True)
class ProcTimes:
    """CPU times (clock ticks) of one process from /proc/<pid>/stat."""

    pid: int
    comm: str
    state: str
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def own(self) -> int:
        """utime + stime: this process, all its threads."""
        return self.utime + self.stime

    @property
    def total(self) -> int:
        """Its own time plus that of the children it has reaped (backends that came and went)."""
        return self.own + self.cutime + self.cstime


def parse_proc_stat(text: str) -> ProcTimes:
    # comm may hold spaces and parentheses: it runs from the first "(" to the last ")".
    head, _, rest = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = rest.split()  # fields[0] is field 3 (state) of proc(5)
    if len(fields) < 15:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    return ProcTimes(
        pid=int(pid),
        comm=comm,
        state=fields[0],
        ppid=int(fields[1]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
    )


def parse_cpu_line(text: str) -> tuple[int, int]:
    """(busy, total) ticks of all cores from /proc/stat's first line; idle and iowait are not busy."""
    line = text.splitlines()[0]
    words = line.split()
    if words[0] != "cpu":
        raise ValueError(f"not the aggregate cpu line: {line!r}")
    ticks = [int(w) for w in words[1:]]
    # guest time is already inside user; counting it twice would overstate busy
    total = sum(ticks[:8])
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return total - idle, total


def read_proc_stats(proc: Path = Path("/proc")) -> dict[int, ProcTimes]:
    stats: dict[int, ProcTimes] = {}
    for path in proc.glob("[0-9]*/stat"):
        try:
            entry = parse_proc_stat(path.read_text())
        except (OSError, ValueError):
            continue  # exited between the listing and the read
        stats[entry.pid] = entry
    return stats


def tree(stats: dict[int, ProcTimes], roots: Iterable[int]) -> set[int]:
    """The roots that exist and all their descendants."""
    children: dict[int, list[int]] = {}
    for entry in stats.values():
        children.setdefault(entry.ppid, []).append(entry.pid)
    found: set[int] = set()
    todo = [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def group_ticks(stats: dict[int, ProcTimes], roots: Iterable[int]) -> int:
    """CPU ticks spent so far by a process tree, reaped children included.

    Differences of this figure between two snapshots are exact as long as every process that
    left the tree was reaped by a member of it (PostgreSQL's postmaster reaps its backends).
    """
    return sum(stats[pid].total for pid in tree(stats, roots))


def cores(ticks: float, seconds: float, hz: float) -> float:
    return ticks / hz / seconds if seconds > 0 else 0.0


class CpuSampler:
    """Samples /proc every `interval` seconds while a load runs; CPU by group of processes.

    For each group (a name and the root pids of its process trees) it reports the mean cores used
    over the whole run and the busiest single process in any one interval (a process near 1.0
    core is saturated: nothing can run it faster).
    """

    def __init__(self, groups: dict[str, list[int]], interval: float = 1.0) -> None:
        self.groups = groups
        self.interval = interval
        self.hz = float(os.sysconf("SC_CLK_TCK"))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._peak: dict[str, tuple[float, str]] = {}
        self._first: dict[int, ProcTimes] = {}
        self._machine_first = (0, 0)
        self._started = 0.0
        self._driver_first = 0.0

    def start(self) -> None:
        self._first = read_proc_stats()
        self._machine_first = parse_cpu_line(Path("/proc/stat").read_text())
        self._driver_first = _own_cpu_seconds()
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        previous, at = self._first, self._started
        while not self._stop.wait(self.interval):
            now_stats, now = read_proc_stats(), time.monotonic()
            for name, roots in self.groups.items():
                for pid in tree(now_stats, roots):
                    before = previous.get(pid)
                    if before is None:
                        continue
                    used = cores(now_stats[pid].own - before.own, now - at, self.hz)
                    if used > self._peak.get(name, (-1.0, ""))[0]:
                        self._peak[name] = (used, f"{now_stats[pid].comm}[{pid}]")
            previous, at = now_stats, now

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        last = read_proc_stats()
        machine = parse_cpu_line(Path("/proc/stat").read_text())
        seconds = time.monotonic() - self._started
        result: dict[str, Any] = {"seconds": round(seconds, 3), "groups": {}}
        for name, roots in self.groups.items():
            used = group_ticks(last, roots) - group_ticks(self._first, roots)
            peak, where = self._peak.get(name, (0.0, ""))
            result["groups"][name] = {
                "cores": round(cores(used, seconds, self.hz), 3),
                "busiest_process": where,
                "busiest_process_peak_cores": round(peak, 3),
            }
        busy = machine[0] - self._machine_first[0]
        total = machine[1] - self._machine_first[1]
        ncpu = os.cpu_count() or 1
        result["machine_busy_cores"] = round(busy / total * ncpu, 3) if total else 0.0
        result["driver_cores"] = round((_own_cpu_seconds() - self._driver_first) / seconds, 3)
        return result


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def run_measured(argv: list[str], out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a load generator to its end; its exit code, wall time and CPU from /proc/<pid>/stat.

    The CPU is read from the exited (not yet reaped) process, so it covers the whole run; the
    kernel's rusage from reaping it is kept beside it as a cross-check.
    """
    hz = float(os.sysconf("SC_CLK_TCK"))
    with out.open("w") as sink:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        wall = time.monotonic() - started
        try:
            times = parse_proc_stat(Path(f"/proc/{proc.pid}/stat").read_text())
            ticks = times.own
        except (OSError, ValueError):
            ticks = -1
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    rusage_seconds = usage.ru_utime + usage.ru_stime
    cpu_seconds = ticks / hz if ticks >= 0 else rusage_seconds
    return {
        "exit_code": proc.returncode,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "cpu_seconds_rusage": round(rusage_seconds, 3),
        "cores": round(cpu_seconds / wall, 3) if wall > 0 else 0.0,
    }


# --- statistics over rounds -----------------------------------------------------------------------
def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def per_round_ratios(runs: list[dict[str, Any]], target: str, ceiling: str) -> list[float | None]:
    """target rate / ceiling rate, each round against the ceiling of the same round."""
    rates: dict[tuple[int, str], float] = {(r["round"], r["kind"]): r["rate"] for r in runs}
    rounds = sorted({r["round"] for r in runs})
    return [
        ratio(rates[(n, target)], rates[(n, ceiling)])
        for n in rounds
        if (n, target) in rates and (n, ceiling) in rates
    ]


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind: medians over rounds of rate, p50, p99, load-generator cores; ratios; errors."""
    summary: dict[str, dict[str, Any]] = {}
    for kind in ROUND:
        mine = [r for r in runs if r["kind"] == kind]
        if not mine:
            continue
        row: dict[str, Any] = {
            "rounds": len(mine),
            "rate": median(r["rate"] for r in mine),
            "p50_ms": median(r["latency_ms"].get("p50") for r in mine),
            "p99_ms": median(r["latency_ms"].get("p99") for r in mine),
            "errors": sum(r["error_count"] for r in mine),
            "load_generator_cores": median(r["load_generator"]["cores"] for r in mine),
            "vs_nginx": None,
            "vs_pgbench": None,
        }
        if kind in EQUIVALENT:
            row["vs_nginx"] = median(per_round_ratios(runs, kind, FIXED))
            row["vs_pgbench"] = median(per_round_ratios(runs, kind, EQUIVALENT[kind]))
        groups = [r["cpu"]["groups"] for r in mine if r.get("cpu")]
        if groups:
            row["cpu_cores"] = {
                name: median(g[name]["cores"] for g in groups if name in g) for name in groups[0]
            }
            row["busiest"] = {
                name: max(
                    (g[name]["busiest_process_peak_cores"], g[name]["busiest_process"])
                    for g in groups
                    if name in g
                )
                for name in groups[0]
            }
            row["machine_busy_cores"] = median(r["cpu"]["machine_busy_cores"] for r in mine)
            row["driver_cores"] = median(r["cpu"]["driver_cores"] for r in mine)
            # busy cores that none of the above account for: anything else on the machine
            row["other_cores"] = median(
                r["cpu"]["machine_busy_cores"]
                - sum(g["cores"] for g in r["cpu"]["groups"].values())
                - r["load_generator"]["cores"]
                - r["cpu"]["driver_cores"]
                for r in mine
                if r.get("cpu")
            )
        summary[kind] = row
    return summary


def round_order(round_number: int) -> tuple[str, ...]:
    """Odd rounds run forwards, even rounds backwards, so no kind always runs first or last."""
    return ROUND if round_number % 2 == 1 else tuple(reversed(ROUND))


# --- the SQL pgbench runs ---------------------------------------------------------------------------
def pgbench_statement(sql: str, args: Sequence[Any], bindings: dict[int, str]) -> str:
    """The service's SQL with $n replaced: by a pgbench `:variable` or an SQL literal.

    bindings maps a parameter number to its replacement; parameters without one become literals.
    """

    def replace(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n in bindings:
            return bindings[n]
        value = args[n - 1]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"cannot write ${n}={value!r} as a literal")
        return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"

    return re.sub(r"\$(\d+)", replace, sql)


@dataclass(frozen=True)
class PriceWindow:
    """How a search draws its price filter for one category (whole currency units)."""

    category: str
    min_low: int
    min_high: int
    width_low: int
    width_high: int


def price_windows() -> list[PriceWindow]:
    """For each seeded category: min_price within the cheaper quarter of its range (prices skew
    low), max_price 5 units to a tenth of the range above it. Most searches fill a page."""
    from services.product.entrypoints.seed import CATALOG

    windows = []
    for category, (_kinds, _brands, (low, high)) in CATALOG.items():
        span = (high - low) // 100
        windows.append(
            PriceWindow(category, low // 100, low // 100 + span // 4, 5, max(10, span // 10))
        )
    return windows


def windows_file_text(windows: Sequence[PriceWindow]) -> str:
    from urllib.parse import quote

    return "".join(
        f"{quote(w.category, safe='')} {w.min_low} {w.min_high} {w.width_low} {w.width_high}\n"
        for w in windows
    )


def by_id_script() -> str:
    from services.product.adapters.repository import COLUMNS

    return (
        f"\\set n random(1, :products)\n"
        f"SELECT {COLUMNS} FROM products"
        f" WHERE id = (SELECT id FROM {BENCH_SCHEMA}.product_ids WHERE n = :n);\n"
    )


def search_script(window: PriceWindow) -> str:
    from services.product.adapters.repository import search_sql
    from services.product.domain.search import SearchQuery

    query = SearchQuery(
        category=window.category,
        min_price_cents=1,
        max_price_cents=2,
        in_stock=True,
        sort="price_asc",
        limit=SEARCH_PAGE,
    )
    sql, args = search_sql(query)
    positions = {value: n for n, value in enumerate(args, start=1) if isinstance(value, int)}
    bindings = {
        positions[1]: ":min_cents",
        positions[2]: ":max_cents",
        positions[SEARCH_PAGE + 1]: ":page",
    }
    return (
        f"\\set min_price random({window.min_low}, {window.min_high})\n"
        f"\\set max_price :min_price + random({window.width_low}, {window.width_high})\n"
        "\\set min_cents 100 * :min_price\n"
        "\\set max_cents 100 * :max_price\n"
        f"\\set page {SEARCH_PAGE + 1}\n"
        f"{pgbench_statement(sql, args, bindings)};\n"
    )


# --- the platform ------------------------------------------------------------------------------------
def _http_status(url: str, timeout: float = 2.0) -> int:
    request = urllib.request.Request(
        url, headers={"User-Agent": f"{USER_AGENT}-check", "X-Client-Id": "bench-check"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _product_ports(settings: Settings) -> list[int]:
    from shopstream.runtime import platform

    count = platform.instance_counts(settings).get("product", 0)
    return [settings.service_port("product", i) for i in range(1, count + 1)]


def platform_problem(settings: Settings) -> str:
    """Why the platform cannot be benchmarked now, or "" when it can."""
    ports = _product_ports(settings)
    if not ports:
        return "no product-service instance is registered"
    for port in ports:
        if _http_status(f"http://127.0.0.1:{port}/health/ready") != 200:
            return f"product-service on :{port} is not ready"
    gateway = f"http://127.0.0.1:{settings.gateway_port}/products?limit=1"
    if (status := _http_status(gateway)) != 200:
        return f"the gateway does not answer GET /products with 200 (got {status or 'nothing'})"
    fixed = f"http://127.0.0.1:{settings.gateway_status_port}/fixed"
    if (status := _http_status(fixed)) != 200:
        return f"the gateway's fixed-response ceiling {fixed} answers {status or 'nothing'}"
    return ""


async def _prepare_catalog(settings: Settings) -> tuple[list[str], str]:
    """Seed if needed; (the seeded ids in SKU order, the server version); fill the id mapping."""
    import asyncpg

    from services.product.entrypoints.seed import seed_catalog

    await seed_catalog(settings, SEEDED_PRODUCTS)
    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        ids = [
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM products WHERE sku ~ $1 ORDER BY sku", SEEDED_SKU
            )
        ]
        # pgbench draws numbers, not uuids: n -> id lets it read the same products as wrk does.
        await conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {BENCH_SCHEMA};"
            f" DROP TABLE IF EXISTS {BENCH_SCHEMA}.product_ids;"
            f" CREATE TABLE {BENCH_SCHEMA}.product_ids (n integer PRIMARY KEY, id uuid NOT NULL)"
        )
        await conn.execute(
            f"INSERT INTO {BENCH_SCHEMA}.product_ids (n, id)"
            " SELECT row_number() OVER (ORDER BY sku), id FROM products WHERE sku ~ $1",
            SEEDED_SKU,
        )
        await conn.execute(f"ANALYZE {BENCH_SCHEMA}.product_ids")
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    return ids, version


async def _drop_bench_schema(settings: Settings) -> None:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE")
    finally:
        await conn.close()


def _process_groups(settings: Settings) -> dict[str, list[int]]:
    """The platform's processes by role; "background" is every other process the platform manages
    (relays, event consumers, other services' instances), so their CPU is not counted as "other"."""
    from shopstream.runtime import gateway, kafka_broker, postgres, processes

    product_instances = {f"product-{i}" for i in range(1, len(_product_ports(settings)) + 1)}
    managed = processes.managed_names(settings)
    groups: dict[str, list[int | None]] = {
        "gateway": [gateway.pid(settings)],
        "product": [processes.read_pid(settings, n) for n in sorted(product_instances)],
        "postgres": [postgres.pid(settings)],
        "kafka": [kafka_broker.pid(settings)],
        "background": [
            processes.read_pid(settings, n)
            for n in managed
            if n not in product_instances and n != kafka_broker.NAME
        ],
    }
    return {name: [p for p in pids if p and processes.alive(p)] for name, pids in groups.items()}


def _scrape_cache(settings: Settings) -> tuple[float, float]:
    hits = misses = 0.0
    for port in _product_ports(settings):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                h, m = parse_cache_lookups(resp.read().decode())
        except OSError:
            continue
        hits, misses = hits + h, misses + m
    return hits, misses


def _command_output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""
    )


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "kernel": pyplatform.release(),
    }


def git_revision() -> tuple[str, bool]:
    rev = _command_output(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = bool(
        subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    )
    return rev or "unknown", dirty


# --- one measurement ------------------------------------------------------------------------------
@dataclass
class Bench:
    settings: Settings
    duration: int
    connections: int
    wrk: str
    pgbench: str
    workdir: Path  # scratch: ids, pgbench logs
    run_dir: Path  # kept: scripts and raw tool output
    groups: dict[str, list[int]]

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"

    def wrk_argv(self, kind: str, seconds: int) -> list[str]:
        base = [
            self.wrk,
            f"-t{WRK_THREADS}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--latency",
        ]
        if kind == FIXED:
            url = f"http://127.0.0.1:{self.settings.gateway_status_port}"
            return [*base, "-s", str(WRK_DIR / "fixed.lua"), url]
        if kind == BY_ID:
            script, data = WRK_DIR / "product_by_id.lua", self.workdir / "ids.txt"
        else:
            script, data = WRK_DIR / "product_search.lua", self.run_dir / "search-windows.txt"
        return [*base, "-s", str(script), self.gateway, "--", str(data)]

    def pgbench_argv(self, kind: str, log_prefix: Path) -> list[str]:
        s = self.settings
        scripts = sorted(
            self.run_dir.glob("pgbench-by-id.sql" if kind == PG_BY_ID else "pgbench-search-*.sql")
        )
        argv = [
            self.pgbench,
            "-h", s.postgres_host,
            "-p", str(s.postgres_port),
            "-U", s.postgres_user,
            "-n",
            "-M", "prepared",
            "-c", str(PGBENCH_CLIENTS),
            "-j", str(PGBENCH_THREADS),
            "-T", str(self.duration),
            "-l", f"--log-prefix={log_prefix}",
            "-D", f"products={SEEDED_PRODUCTS}",
        ]  # fmt: skip
        for script in scripts:
            argv += ["-f", f"{script}@1"]
        return [*argv, "product"]

    def warm_up(self) -> None:
        for kind in (FIXED, BY_ID, SEARCH):
            subprocess.run(
                self.wrk_argv(kind, WARMUP_SECONDS), capture_output=True, check=False, timeout=60
            )

    def measure(self, kind: str, round_number: int) -> dict[str, Any]:
        out = self.run_dir / f"round{round_number}-{kind}.txt"
        record: dict[str, Any] = {
            "kind": kind,
            "round": round_number,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        access_log = self._access_log()
        log_offset = access_log.stat().st_size if access_log.exists() else 0
        cache_before = _scrape_cache(self.settings) if kind == BY_ID else None
        sampler = CpuSampler(self.groups)
        env = dict(os.environ)
        if self.settings.postgres_password:
            env["PGPASSWORD"] = self.settings.postgres_password
        if kind.startswith("pgbench"):
            prefix = self.workdir / f"pg-{round_number}-{kind}"
            argv = self.pgbench_argv(kind, prefix)
        else:
            argv = self.wrk_argv(kind, self.duration)
        sampler.start()
        generator = run_measured(argv, out, env)
        # let postgres reap pgbench's backends so their CPU lands in the postmaster's account
        time.sleep(0.3)
        record["cpu"] = sampler.stop()
        record["load_generator"] = {"program": Path(argv[0]).name, **generator}
        text = out.read_text(errors="replace")
        if kind.startswith("pgbench"):
            tps, processed, failed = parse_pgbench(text)
            latencies: list[float] = []
            log_failed = 0
            for log in sorted(self.workdir.glob(prefix.name + ".*")):
                lats, bad = parse_pgbench_log(log.read_text().splitlines())
                latencies += lats
                log_failed += bad
                log.unlink()
            result = LoadResult(
                requests=processed,
                seconds=processed / tps if tps > 0 else 0.0,
                errors={"pgbench_failed": max(failed, log_failed)},
                latency_ms=latency_summary(latencies),
            )
            record["pgbench"] = {"tps": tps, "clients": PGBENCH_CLIENTS, "threads": PGBENCH_THREADS}
        else:
            result = parse_wrk(text)
        if generator["exit_code"] != 0:
            result.errors["exit_code"] = 1
        if kind in (BY_ID, SEARCH):
            time.sleep(ACCESS_LOG_FLUSH_SECONDS)
            statuses = self._statuses_since(access_log, log_offset)
            record["gateway_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
            result.errors["gateway_non_2xx"] = non_2xx(statuses)
            # wrk's own status count is the same failures seen from the client: not added twice
            result.errors.pop("wrk_status", None)
        if cache_before is not None:
            hits, misses = (
                a - b for a, b in zip(_scrape_cache(self.settings), cache_before, strict=True)
            )
            record["cache"] = {
                "hits": hits,
                "misses": misses,
                "hit_ratio": round(hits / (hits + misses), 3) if hits + misses else None,
            }
        record.update(
            {
                "rate": result.rate,
                "requests": result.requests,
                "seconds": result.seconds,
                "latency_ms": result.latency_ms,
                "errors": result.errors,
                "error_count": result.error_count,
            }
        )
        return record

    def _access_log(self) -> Path:
        from shopstream.runtime import gateway

        return gateway.access_log_path(self.settings)

    @staticmethod
    def _statuses_since(path: Path, offset: int) -> Counter[int]:
        if not path.exists():
            return Counter()
        with path.open("rb") as fh:
            if fh.seek(0, os.SEEK_END) < offset:
                offset = 0  # rotated meanwhile
            fh.seek(offset)
            data = fh.read().decode(errors="replace")
        return gateway_statuses(data.splitlines())


# --- report ----------------------------------------------------------------------------------------
def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(summary: dict[str, dict[str, Any]]) -> str:
    header = (
        f"{'target':<40}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'x nginx':>9}{'x pgbench':>11}{'errors':>8}{'loadgen cores':>15}"
    )
    lines = [header, "-" * len(header)]
    for kind, row in summary.items():
        lines.append(
            f"{LABELS[kind]:<40}{_fmt(row['rate'], ',.0f'):>10}{_fmt(row['p50_ms'], '.2f'):>9}"
            f"{_fmt(row['p99_ms'], '.2f'):>9}{_fmt(row['vs_nginx'], '.3f'):>9}"
            f"{_fmt(row['vs_pgbench'], '.3f'):>11}{row['errors']:>8}"
            f"{_fmt(row['load_generator_cores'], '.2f'):>15}"
        )
    return "\n".join(lines)


def cpu_table(summary: dict[str, dict[str, Any]], ncpu: int) -> str:
    names = ["gateway", "product", "postgres", "kafka", "background"]
    header = (
        f"{'during':<40}{'loadgen':>8}"
        + "".join(f"{n:>11}" for n in names)
        + f"{'driver':>8}{'other':>7}{'machine':>9}"
    )
    lines = [f"CPU in cores (medians over rounds; the machine has {ncpu})", header]
    busiest: list[str] = []
    for kind, row in summary.items():
        if "cpu_cores" not in row:
            continue
        c = row["cpu_cores"]
        other = row["other_cores"] or 0.0
        lines.append(
            f"{LABELS[kind]:<40}{_fmt(row['load_generator_cores'], '.2f'):>8}"
            + "".join(f"{_fmt(c.get(n), '.2f'):>11}" for n in names)
            + f"{_fmt(row['driver_cores'], '.2f'):>8}{other:>7.2f}"
            f"{_fmt(row['machine_busy_cores'], '.2f'):>9}"
        )
        hot = [
            f"{name} {where} {peak:.2f}"
            for name, (peak, where) in row["busiest"].items()
            if peak >= 0.5
        ]
        if hot:
            busiest.append(f"  {LABELS[kind]}: " + "; ".join(hot))
    lines.append(
        "background: relays, consumers, other services' instances; driver: this command;"
        " other: busy cores none of these account for (anything else on the machine)"
    )
    if busiest:
        lines += ["busiest single process in any 1 s interval (>= 0.5 core):", *busiest]
    return "\n".join(lines)


def run_id(now: datetime, rev: str) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{rev}"


# --- entry point -------------------------------------------------------------------------------------
def run_product_benchmark(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream.runtime import gateway, postgres

    machine = machine_info()  # load average before this command adds any
    wrk = shutil.which("wrk")
    pgbench = shutil.which("pgbench") or str(postgres.bin_dir() / "pgbench")
    if not wrk or not Path(pgbench).exists():
        print("wrk and pgbench are needed: run scripts/bootstrap.sh (or `make install`)")
        return 2
    problem = platform_problem(settings)
    if problem:
        print(f"cannot benchmark: {problem}.")
        print("Start the platform with `.venv/bin/shopstream up` (or `make up`), then run again.")
        return 2
    duration, connections, rounds = int(args.duration), int(args.connections), int(args.rounds)
    if duration < 1 or connections < WRK_THREADS or rounds < 1:
        print(f"need --duration >= 1, --connections >= {WRK_THREADS}, --rounds >= 1")
        return 2

    rev, dirty = git_revision()
    rid = run_id(datetime.now(UTC), rev)
    run_dir = RESULTS_DIR / rid
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"bench products: run {rid}; preparing the catalog ...", flush=True)
    ids, pg_version = asyncio.run(_prepare_catalog(settings))
    if len(ids) < SEEDED_PRODUCTS:
        print(f"the catalog holds only {len(ids)} seeded products; expected {SEEDED_PRODUCTS}")
        return 2

    windows = price_windows()
    (run_dir / "search-windows.txt").write_text(windows_file_text(windows))
    (run_dir / "pgbench-by-id.sql").write_text(by_id_script())
    for i, window in enumerate(windows):
        (run_dir / f"pgbench-search-{i:02d}.sql").write_text(search_script(window))

    versions = {
        "python": sys.version.split()[0],
        "nginx": _command_output([gateway.nginx_binary(), "-v"]),
        "postgresql": pg_version,
        "pgbench": _command_output([pgbench, "--version"]),
        "wrk": _command_output([wrk, "-v"]),
    }
    groups = _process_groups(settings)
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="shopstream-bench-") as scratch:
            workdir = Path(scratch)
            (workdir / "ids.txt").write_text("\n".join(ids) + "\n")
            bench = Bench(settings, duration, connections, wrk, pgbench, workdir, run_dir, groups)
            print(
                f"warm-up ({WARMUP_SECONDS}s per HTTP target), then {rounds} round(s) of "
                f"{len(ROUND)} x {duration}s ...",
                flush=True,
            )
            bench.warm_up()
            for n in range(1, rounds + 1):
                for kind in round_order(n):
                    time.sleep(PAUSE_SECONDS)
                    record = bench.measure(kind, n)
                    runs.append(record)
                    print(_progress(record), flush=True)
    finally:
        asyncio.run(_drop_bench_schema(settings))

    summary = summarize(runs)
    errors = sum(r["error_count"] for r in runs)
    report = {
        "run_id": rid,
        "git_revision": rev,
        "git_dirty": dirty,
        "machine": machine,
        "versions": versions,
        "settings": {
            "duration_seconds": duration,
            "rounds": rounds,
            "wrk_threads": WRK_THREADS,
            "wrk_connections": connections,
            "pgbench_clients": PGBENCH_CLIENTS,
            "pgbench_threads": PGBENCH_THREADS,
            "product_instances": len(_product_ports(settings)),
            "db_pool_size": settings.db_pool_size,
            "gateway_rate_limit": settings.gateway_rate_limit,
            "catalog_products": len(ids),
        },
        "sql": {
            "by_id": by_id_script(),
            "search": [search_script(w) for w in windows],
        },
        "summary": summary,
        "runs": runs,
    }
    out = run_dir / "bench-products.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")

    print()
    print(
        f"machine: {machine['cores']} cores ({machine['cpu_model']}), load average before "
        f"{' '.join(map(str, machine['load_average_before']))}; git {rev}{' (dirty)' if dirty else ''}"
    )
    print("versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"wrk -t{WRK_THREADS} -c{connections} -d{duration}s; pgbench -M prepared "
        f"-c {PGBENCH_CLIENTS} -j {PGBENCH_THREADS} -T {duration}; {rounds} round(s); "
        "medians over rounds, ratios per round against the same round's ceiling"
    )
    print()
    print(table(summary))
    print()
    print(cpu_table(summary, machine["cores"] or 1))
    cache = [
        r["cache"]["hit_ratio"] for r in runs if r.get("cache", {}).get("hit_ratio") is not None
    ]
    if cache:
        print(f"product cache hit ratio during GET by id: median {median(cache):.2f}")
    busy_elsewhere = max((row.get("other_cores") or 0.0) for row in summary.values())
    if busy_elsewhere > OTHER_CORES_WARNING:
        print(
            f"note: processes outside the platform and the load generator used up to "
            f"{busy_elsewhere:.2f} cores (median per target): the machine was not quiet"
        )
    print(f"\nraw results: {out.relative_to(PROJECT_ROOT)}")
    if errors:
        print(
            f"\n!!! {errors} ERRORS OR NON-2XX ANSWERS: these figures are not valid !!!\n"
            + "\n".join(
                f"  round {r['round']} {LABELS[r['kind']]}: {r['errors']}"
                for r in runs
                if r["error_count"]
            )
        )
        return 1
    return 0


def _progress(record: dict[str, Any]) -> str:
    lat = record["latency_ms"]
    gen = record["load_generator"]
    extra = ""
    if "cache" in record and record["cache"]["hit_ratio"] is not None:
        extra = f"  cache hits {record['cache']['hit_ratio']:.0%}"
    errors = f"  ERRORS {record['errors']}" if record["error_count"] else ""
    return (
        f"round {record['round']}  {LABELS[record['kind']]:<40}{record['rate']:>10,.0f}/s"
        f"  p50 {_fmt(lat.get('p50'), '.2f')} ms  p99 {_fmt(lat.get('p99'), '.2f')} ms"
        f"  {gen['program']} {gen['cores']:.2f} cores{extra}{errors}"
    )
