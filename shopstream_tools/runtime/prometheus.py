"""Prometheus for the local platform: its configuration (the rules in ``infra/prometheus/rules``,
the local Alertmanager as where alerts go) and its file-based discovery targets, written from the
running instances. ``scale`` rewrites the targets so Prometheus follows the instance count (it
watches the files). Everything lives under ``<data>/prometheus``."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import exporters, patroni_config, satellites, supervision, topology

PROMETHEUS = "prometheus"
PROMETHEUS_HOME = PROJECT_ROOT / "infra" / "prometheus"
RULES_DIR = PROMETHEUS_HOME / "rules"


def home(settings: Settings) -> Path:
    return settings.data_path / "prometheus"


def targets_dir(settings: Settings) -> Path:
    return home(settings) / "targets"


def _target(port: int, process: str, **labels: str) -> dict[str, Any]:
    return {"targets": [f"127.0.0.1:{port}"], "labels": {"process": process, **labels}}


def scrape_targets(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every scrape job's target groups, from the settings and the running instance counts."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    counts = topology.instance_counts(settings)
    for spec in topology.specs():
        jobs[spec.name] = [
            _target(
                settings.service_port(spec.name, i),
                topology.instance_name(spec.name, i),
                service=spec.name,
            )
            for i in range(1, counts.get(spec.name, 0) + 1)
        ]
        jobs[f"{spec.name}-relay"] = [
            _target(
                topology.relay_metrics_port(settings, spec.name),
                f"{spec.name}-relay",
                service=spec.name,
            )
        ]
        jobs[f"{spec.name}-consumer"] = [
            _target(worker.metrics_port, worker.name, service=spec.name)
            for worker in topology.workers(settings, spec)
        ]
    for job, port in (
        ("gateway", settings.nginx_exporter_port),
        ("postgres", settings.postgres_exporter_port),
        ("node", settings.node_exporter_port),
    ):
        if port:  # the lab runs Prometheus without the exporters (they would be measured too)
            jobs[job] = [_target(port, job)]
    if settings.postgres_nodes > 1:  # the HA profile's Patroni: each node's role, timeline, lag
        jobs["patroni"] = [
            _target(patroni_config.api_port(settings, n), patroni_config.node_name(n))
            for n in patroni_config.nodes(settings)
        ]
    if settings.kafka_metrics_port and exporters.jmx_agent_jar() is not None:
        jobs["kafka"] = [_target(settings.kafka_metrics_port, "kafka")]
    # supervisord's event listener: restarts and crash loops of the supervised processes
    jobs["supervisor"] = [_target(supervision.metrics_port(settings), supervision.WATCH)]
    jobs["prometheus"] = [_target(settings.prometheus_port, PROMETHEUS)]
    if settings.alertmanager_port:
        jobs["alertmanager"] = [_target(settings.alertmanager_port, satellites.ALERTMANAGER)]
    if settings.zipkin_port and satellites.zipkin_jar() is not None:
        jobs["zipkin"] = [_target(settings.zipkin_port, satellites.ZIPKIN)]
    if settings.console_port and satellites.console_present():
        jobs["console"] = [_target(settings.console_port, satellites.CONSOLE)]
    return jobs


METRICS_PATHS = {"zipkin": "/prometheus"}
# The lab's load generator: its discovery file belongs to the lab, which lists a generator there
# only while one runs (shopstream_tools.lab.scrape); here the job and an empty file just exist. Scraped
# every second, since a lab step lasts seconds.
LOADGEN_JOB = "loadgen"
LOADGEN_SCRAPE_INTERVAL = "1s"


def write_targets(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Rewrite the discovery files; Prometheus notices the change and follows it."""
    folder = targets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = scrape_targets(settings)
    for job, groups in jobs.items():
        path = folder / f"{job}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=1))
        os.replace(tmp, path)  # atomic: Prometheus never reads half a file
    loadgen = folder / f"{LOADGEN_JOB}.json"
    if not loadgen.exists():
        loadgen.write_text("[]")
    for stale in folder.glob("*.json"):
        if stale.stem not in jobs and stale != loadgen:
            stale.unlink()
    return jobs


def config(settings: Settings, jobs: Sequence[str]) -> str:
    folder = targets_dir(settings)
    config = {
        "global": {
            "scrape_interval": settings.prometheus_scrape_interval,
            "evaluation_interval": settings.prometheus_scrape_interval,
            "external_labels": {"platform": "shopstream-local"},
        },
        "rule_files": [str(RULES_DIR / "*.yml")],
        **_alerting(settings),
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": METRICS_PATHS.get(job, "/metrics"),
                "file_sd_configs": [{"files": [str(folder / f"{job}.json")]}],
                **(
                    {
                        "scrape_interval": LOADGEN_SCRAPE_INTERVAL,
                        "scrape_timeout": LOADGEN_SCRAPE_INTERVAL,
                    }
                    if job == LOADGEN_JOB
                    else {}
                ),
            }
            for job in [*jobs, LOADGEN_JOB]
        ],
    }
    return (
        "# Written by `shopstream up` (shopstream_tools/runtime/prometheus.py): do not edit.\n"
        + (yaml.safe_dump(config, sort_keys=False))
    )


def _alerting(settings: Settings) -> dict[str, Any]:
    if not settings.alertmanager_port:
        return {}
    target = f"127.0.0.1:{settings.alertmanager_port}"
    return {"alerting": {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}}


def write_config(settings: Settings) -> Path:
    jobs = write_targets(settings)
    path = home(settings) / "prometheus.yml"
    path.write_text(config(settings, list(jobs)))
    return path


def promtool() -> str:
    return shutil.which("promtool") or "/usr/bin/promtool"


def argv(settings: Settings) -> list[str]:
    folder = home(settings)
    return [
        shutil.which("prometheus") or "/usr/bin/prometheus",
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'tsdb'}",
        f"--storage.tsdb.retention.time={settings.prometheus_retention}",
        f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
        "--web.enable-lifecycle",
    ]
