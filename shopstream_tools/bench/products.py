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
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopstream.config import Settings
from shopstream_tools.bench.catalog import SEEDED_PRODUCTS, drop_bench_schema, prepare_catalog
from shopstream_tools.bench.ceilings import (
    PGBENCH_CLIENTS,
    PGBENCH_THREADS,
    nginx_fixed_url,
    pgbench_argv,
    pgbench_result,
)
from shopstream_tools.bench.cpu import CpuSampler
from shopstream_tools.bench.load import WRK_THREADS, parse_wrk, run_measured, wrk_argv
from shopstream_tools.bench.platform_probes import (
    access_log_path,
    gateway_cache_since,
    non_2xx,
    platform_problem,
    process_groups,
    product_ports,
    scrape_cache,
    statuses_since,
)
from shopstream_tools.bench.queries import (
    PriceWindow,
    by_id_script,
    price_windows,
    search_script,
    windows_file_text,
)
from shopstream_tools.bench.report import print_report, progress
from shopstream_tools.bench.run_info import (
    RESULTS_DIR,
    git_revision,
    machine_info,
    run_id,
    tool_versions,
)
from shopstream_tools.bench.summary import summarize
from shopstream_tools.bench.targets import BY_ID, FIXED, PG_BY_ID, ROUND, SEARCH, round_order
from shopstream_tools.runtime import database_roles

WARMUP_SECONDS = 2
PAUSE_SECONDS = 2.0
# nginx flushes its buffered access log every second; read it only after that.
ACCESS_LOG_FLUSH_SECONDS = 1.5
TOKENS_ENV = "SHOPSTREAM_BENCH_TOKENS"
BENCH_CLIENTS = 1024  # the client ids of performance-tests/wrk/common.lua
ZIPF_DRAWS = 200_000  # lines of the hot-set ids file: enough that wrk's picks follow the law


@dataclass
class Bench:
    """Measures one target or ceiling at a time, and the CPU it cost the load generator and the
    platform."""

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
        if kind == FIXED:
            url = nginx_fixed_url(self.settings)
            return wrk_argv(self.wrk, self.connections, seconds, "fixed.lua", url)
        if kind == BY_ID:
            script, data = "product_by_id.lua", self.workdir / "ids.txt"
        else:
            script, data = "product_search.lua", self.run_dir / "search-windows.txt"
        return wrk_argv(self.wrk, self.connections, seconds, script, self.gateway, str(data))

    def pgbench_argv(self, kind: str, log_prefix: Path) -> list[str]:
        scripts = sorted(
            self.run_dir.glob("pgbench-by-id.sql" if kind == PG_BY_ID else "pgbench-search-*.sql")
        )
        return pgbench_argv(self.pgbench, self.settings, scripts, self.duration, log_prefix)

    def warm_up(self) -> None:
        for kind in (FIXED, BY_ID, SEARCH):
            subprocess.run(
                self.wrk_argv(kind, WARMUP_SECONDS), capture_output=True, check=False, timeout=60
            )

    def run_rounds(self, rounds: int) -> list[dict[str, Any]]:
        """Every target and ceiling once per round, printing each measurement as it ends."""
        runs: list[dict[str, Any]] = []
        for n in range(1, rounds + 1):
            for kind in round_order(n):
                time.sleep(PAUSE_SECONDS)
                record = self.measure(kind, n)
                runs.append(record)
                print(progress(record), flush=True)
        return runs

    def measure(self, kind: str, round_number: int) -> dict[str, Any]:
        out = self.run_dir / f"round{round_number}-{kind}.txt"
        record: dict[str, Any] = {
            "kind": kind,
            "round": round_number,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        access_log = access_log_path(self.settings)
        log_offset = access_log.stat().st_size if access_log.exists() else 0
        cache_before = scrape_cache(self.settings) if kind == BY_ID else None
        pgbench_log_prefix = self.workdir / f"pg-{round_number}-{kind}"
        if kind.startswith("pgbench"):
            argv = self.pgbench_argv(kind, pgbench_log_prefix)
        else:
            argv = self.wrk_argv(kind, self.duration)
        record["cpu"], generator = self._run_sampled(argv, out)
        record["load_generator"] = {"program": Path(argv[0]).name, **generator}
        text = out.read_text(errors="replace")
        if kind.startswith("pgbench"):
            result, tps = pgbench_result(text, pgbench_log_prefix)
            record["pgbench"] = {"tps": tps, "clients": PGBENCH_CLIENTS, "threads": PGBENCH_THREADS}
        else:
            result = parse_wrk(text)
        if generator["exit_code"] != 0:
            result.errors["exit_code"] = 1
        if kind in (BY_ID, SEARCH):
            time.sleep(ACCESS_LOG_FLUSH_SECONDS)
            statuses = statuses_since(access_log, log_offset)
            record["gateway_cache"] = gateway_cache_since(access_log, log_offset)
            record["gateway_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
            result.errors["gateway_non_2xx"] = non_2xx(statuses)
            # wrk's own status count is the same failures seen from the client: not added twice
            result.errors.pop("wrk_status", None)
        if cache_before is not None:
            record["cache"] = self._cache_lookups_since(cache_before)
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

    def _run_sampled(self, argv: list[str], out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the platform's CPU, the load generator's record) of one run of the load generator."""
        sampler = CpuSampler(self.groups)
        env = {**os.environ, **database_roles.libpq_env(self.settings)}
        sampler.start()
        generator = run_measured(argv, out, env)
        # let postgres reap pgbench's backends so their CPU lands in the postmaster's account
        time.sleep(0.3)
        return sampler.stop(), generator

    def _cache_lookups_since(self, before: tuple[float, float]) -> dict[str, Any]:
        hits, misses = (a - b for a, b in zip(scrape_cache(self.settings), before, strict=True))
        return {
            "hits": hits,
            "misses": misses,
            "hit_ratio": round(hits / (hits + misses), 3) if hits + misses else None,
        }


def run_product_benchmark(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import postgres

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
    anonymous = bool(getattr(args, "anonymous", False))
    if duration < 1 or connections < WRK_THREADS or rounds < 1:
        print(f"need --duration >= 1, --connections >= {WRK_THREADS}, --rounds >= 1")
        return 2

    rev, dirty = git_revision()
    rid = run_id(datetime.now(UTC), rev)
    run_dir = RESULTS_DIR / rid
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"bench products: run {rid}; preparing the catalog ...", flush=True)
    ids, pg_version = asyncio.run(prepare_catalog(settings))
    if len(ids) < SEEDED_PRODUCTS:
        print(f"the catalog holds only {len(ids)} seeded products; expected {SEEDED_PRODUCTS}")
        return 2

    windows = price_windows()
    _write_load_files(run_dir, windows)
    versions = tool_versions(wrk, pgbench, pg_version)
    groups = process_groups(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="shopstream-bench-") as scratch:
            workdir = Path(scratch)
            drawn = zipf_draws(ids, ZIPF_DRAWS) if args.ids == "zipf" else ids
            (workdir / "ids.txt").write_text("\n".join(drawn) + "\n")
            _sign_in(settings, workdir, anonymous)
            bench = Bench(settings, duration, connections, wrk, pgbench, workdir, run_dir, groups)
            print(
                f"warm-up ({WARMUP_SECONDS}s per HTTP target), then {rounds} round(s) of "
                f"{len(ROUND)} x {duration}s ...",
                flush=True,
            )
            bench.warm_up()
            runs = bench.run_rounds(rounds)
    finally:
        asyncio.run(drop_bench_schema(settings))

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
            "product_instances": len(product_ports(settings)),
            "db_pool_size": settings.db_pool_size,
            "gateway_rate_limit": settings.gateway_rate_limit,
            "catalog_products": len(ids),
            "authenticated": not anonymous,
            "ids": args.ids,
        },
        "sql": {
            "by_id": by_id_script(),
            "search": [search_script(w) for w in windows],
        },
        "summary": summarize(runs),
        "runs": runs,
    }
    out = run_dir / "bench-products.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report, out)
    return 1 if sum(r["error_count"] for r in runs) else 0


def zipf_draws(ids: Sequence[str], count: int, s: float = 1.0, seed: int = 7) -> list[str]:
    """``count`` ids drawn with Zipf's law (rank r has weight 1/r^s) over a fixed shuffle of the
    catalog: wrk picks lines of this file uniformly, so its requests follow the same law, the way
    a shop's traffic concentrates on its best sellers."""
    import random

    rng = random.Random(seed)
    ranked = list(ids)
    rng.shuffle(ranked)
    weights = [1.0 / (rank**s) for rank in range(1, len(ranked) + 1)]
    return rng.choices(ranked, weights=weights, k=count)


def _sign_in(settings: Settings, workdir: Path, anonymous: bool) -> None:
    """One customer token per wrk client id (performance-tests/wrk/common.lua), or none."""
    from shopstream import auth

    if anonymous:
        os.environ.pop(TOKENS_ENV, None)
        return
    auth.ensure_local_issuer(settings)
    tokens = [auth.customer_token(settings, str(uuid.uuid4()), 86400) for _ in range(BENCH_CLIENTS)]
    (workdir / "tokens.txt").write_text("\n".join(tokens) + "\n")
    os.environ[TOKENS_ENV] = str(workdir / "tokens.txt")  # wrk inherits it


def _write_load_files(run_dir: Path, windows: Sequence[PriceWindow]) -> None:
    """The files wrk's search script and pgbench read; kept with the results."""
    (run_dir / "search-windows.txt").write_text(windows_file_text(windows))
    (run_dir / "pgbench-by-id.sql").write_text(by_id_script())
    for i, window in enumerate(windows):
        (run_dir / f"pgbench-search-{i:02d}.sql").write_text(search_script(window))
