"""A run's raw results on disk: the environment, the ceilings, each test's step records, its
per-second samples as CSV (processes; Kafka and outbox), and the summary."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from shopstream.config import Settings
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.load import VEGETA


def versions(settings: Settings) -> dict[str, str]:
    import importlib.metadata as md

    from shopstream_tools.bench import _command_output
    from shopstream_tools.runtime import gateway, kafka_broker, postgres

    kafka_jar = sorted(kafka_broker.LIBS.glob("kafka_2.13-*.jar"))
    return {
        "python": sys.version.split()[0],
        "nginx": _command_output([gateway.nginx_binary(), "-v"]),
        "postgresql": _command_output([str(postgres.bin_dir() / "postgres"), "--version"]),
        "kafka": kafka_jar[-1].stem.replace("kafka_2.13-", "") if kafka_jar else "missing",
        "wrk": _command_output(["wrk", "-v"]),
        "pgbench": _command_output([str(postgres.bin_dir() / "pgbench"), "--version"]),
        "locust": md.version("locust"),
        "vegeta": "v12.13.0" if VEGETA.exists() else "missing",
        "hdrhistogram": md.version("hdrhistogram"),
        "matplotlib": md.version("matplotlib"),
    }


def write_samples_csv(path: Path, steps: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["step", "t", "process", "cpu_cores", "rss_mb", "pss_mb"])
        for step in steps:
            for s in step.get("samples", []):
                for name, cores in s.get("cpu", {}).items():
                    out.writerow([step["step"], s["t"], name, cores, s.get("rss_mb", {}).get(name, ""), s.get("pss_mb", {}).get(name, "")])
                out.writerow([step["step"], s["t"], "machine", s.get("machine_cores", ""), "", ""])


def write_kafka_csv(path: Path, steps: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["step", "t", "kind", "name", "value"])
        for step in steps:
            for s in step.get("samples", []):
                k = s.get("kafka") or {}
                for group, parts in (k.get("lag_partitions") or {}).items():
                    for tp, lag in parts.items():
                        out.writerow([step["step"], s["t"], "lag", f"{group} {tp}", lag])
                for topic, total in (k.get("messages") or {}).items():
                    out.writerow([step["step"], s["t"], "end_offset_sum", topic, total])
                for service, rows in (s.get("backlog") or {}).items():
                    out.writerow([step["step"], s["t"], "outbox_pending", service, rows])


def measured(run_dir: Path, tests: list[str]) -> dict[str, dict[str, Any]]:
    """The tests of ``tests`` an earlier run in ``run_dir`` measured to the end."""
    found = {}
    for test in tests:
        path = run_dir / f"{test}.json"
        if path.exists():
            result = json.loads(path.read_text())
            if result.get("steps") and not result.get("interrupted") and not result.get("error"):
                found[test] = result
    return found


def keep_test(lab: Lab, test: str) -> None:
    """Write a test's result at once, with the ceilings: a later run can resume after it."""
    result = lab.tests[test]
    if lab.stop.is_set():
        result["interrupted"] = True  # cut short: a resumed run measures it again
    (lab.run_dir / "ceilings.json").write_text(json.dumps(lab.ceilings, indent=2, default=str))
    (lab.run_dir / f"{test}.json").write_text(json.dumps(result, indent=1, default=str))


def write_results(lab: Lab, environment: dict[str, Any], summary: dict[str, Any]) -> None:
    (lab.run_dir / "environment.json").write_text(json.dumps(environment, indent=2, default=str))
    (lab.run_dir / "ceilings.json").write_text(json.dumps(lab.ceilings, indent=2, default=str))
    for test, result in lab.tests.items():
        (lab.run_dir / f"{test}.json").write_text(json.dumps(result, indent=1, default=str))
        write_samples_csv(lab.run_dir / f"{test}-processes.csv", result.get("steps", []))
        write_kafka_csv(lab.run_dir / f"{test}-kafka.csv", result.get("steps", []))
    (lab.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))

