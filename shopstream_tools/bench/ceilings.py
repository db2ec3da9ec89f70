"""The same-run ceilings: nginx answering a fixed response (ceiling A) and pgbench running the
SQL of each target against the same PostgreSQL (ceiling B)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from shopstream.config import Settings
from shopstream_tools.bench.catalog import SEEDED_PRODUCTS
from shopstream_tools.bench.load import LoadResult, latency_summary

PGBENCH_CLIENTS = 16
PGBENCH_THREADS = 2


def nginx_fixed_url(settings: Settings) -> str:
    """The gateway's status port: its ``/fixed`` location answers without any service behind."""
    return f"http://127.0.0.1:{settings.gateway_status_port}"


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


def pgbench_argv(
    pgbench: str, settings: Settings, scripts: Iterable[Path], seconds: int, log_prefix: Path
) -> list[str]:
    s = settings
    argv = [
        pgbench,
        "-h", s.postgres_host,
        "-p", str(s.postgres_port),
        "-U", s.postgres_admin_user,  # who made the bench schema; password: libpq_env
        "-n",
        "-M", "prepared",
        "-c", str(PGBENCH_CLIENTS),
        "-j", str(PGBENCH_THREADS),
        "-T", str(seconds),
        "-l", f"--log-prefix={log_prefix}",
        "-D", f"products={SEEDED_PRODUCTS}",
    ]  # fmt: skip
    for script in scripts:
        argv += ["-f", f"{script}@1"]
    return [*argv, "product"]


def pgbench_result(output: str, log_prefix: Path) -> tuple[LoadResult, float]:
    """(the run in common units, pgbench's tps) from its output and its per-transaction logs.

    pgbench's summary has no percentiles, so latencies come from the logs, deleted once read.
    """
    tps, processed, failed = parse_pgbench(output)
    latencies: list[float] = []
    log_failed = 0
    for log in sorted(log_prefix.parent.glob(log_prefix.name + ".*")):
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
    return result, tps
