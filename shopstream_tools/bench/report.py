"""What a run prints: a progress line per measurement, then the figures, the CPU table, the
caveats and any errors, all read from the run's JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT
from shopstream_tools.bench.summary import median
from shopstream_tools.bench.targets import BY_ID, LABELS, SEARCH

# Warn when other work on the machine took more than this many cores during the measurements.
OTHER_CORES_WARNING = 0.2


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


def progress(record: dict[str, Any]) -> str:
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


def print_report(report: dict[str, Any], out: Path) -> None:
    """The figures of a finished run, from the report written to `out`."""
    machine, summary, runs = report["machine"], report["summary"], report["runs"]
    setup = report["settings"]
    duration, dirty = setup["duration_seconds"], report["git_dirty"]
    print()
    print(
        f"machine: {machine['cores']} cores ({machine['cpu_model']}), load average before "
        f"{' '.join(map(str, machine['load_average_before']))}; "
        f"git {report['git_revision']}{' (dirty)' if dirty else ''}"
    )
    print("versions: " + "; ".join(f"{k} {v}" for k, v in report["versions"].items()))
    print(
        f"wrk -t{setup['wrk_threads']} -c{setup['wrk_connections']} -d{duration}s; "
        f"pgbench -M prepared -c {setup['pgbench_clients']} -j {setup['pgbench_threads']} "
        f"-T {duration}; {setup['rounds']} round(s); "
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
    for kind in (BY_ID, SEARCH):
        ratios = [
            r["gateway_cache"]["hit_ratio"]
            for r in runs
            if r["kind"] == kind and (r.get("gateway_cache") or {}).get("hit_ratio") is not None
        ]
        if ratios:
            print(f"gateway read cache answered {kind}: median {median(ratios):.2f} of requests")
    busy_elsewhere = max((row.get("other_cores") or 0.0) for row in summary.values())
    if busy_elsewhere > OTHER_CORES_WARNING:
        print(
            f"note: processes outside the platform and the load generator used up to "
            f"{busy_elsewhere:.2f} cores (median per target): the machine was not quiet"
        )
    print(f"\nraw results: {out.relative_to(PROJECT_ROOT)}")
    errors = sum(r["error_count"] for r in runs)
    if errors:
        print(
            f"\n!!! {errors} ERRORS OR NON-2XX ANSWERS: these figures are not valid !!!\n"
            + "\n".join(
                f"  round {r['round']} {LABELS[r['kind']]}: {r['errors']}"
                for r in runs
                if r["error_count"]
            )
        )
