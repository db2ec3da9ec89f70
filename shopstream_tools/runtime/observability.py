"""The local platform's observability: Prometheus, Alertmanager, the exporters, Zipkin, the console.

``up`` calls ``start`` once the gateway answers: it writes Prometheus' configuration (the rules in
``infra/prometheus/rules``, the local Alertmanager as where alerts go) and its file-based discovery
targets from the running instances, writes Alertmanager's (one receiver: the console's webhook,
which keeps every notification in ``<data>/logs/alert-notifications.log``), then starts whatever is
not running. ``scale`` calls ``write_targets`` so Prometheus follows the instance count (it watches
the files). Everything lives under ``<data>/prometheus``, ``<data>/alertmanager``, ``<data>/logs``
and ``<data>/run``; ``down`` stops these processes with the rest, by their pid files.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import processes, supervision

PROMETHEUS_HOME = PROJECT_ROOT / "infra" / "prometheus"
RULES_DIR = PROMETHEUS_HOME / "rules"
KAFKA_JMX_CONFIG = PROMETHEUS_HOME / "kafka-jmx.yaml"
LIBS = PROJECT_ROOT / "infra" / "observability" / "libs"

PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
NODE_EXPORTER = "node-exporter"
NGINX_EXPORTER = "nginx-exporter"
POSTGRES_EXPORTER = "postgres-exporter"
ZIPKIN = "zipkin"
CONSOLE = "console"

# The node exporter collectors the resources dashboard reads; the rest cost CPU for nothing here.
NODE_COLLECTORS = (
    "cpu",
    "meminfo",
    "loadavg",
    "filesystem",
    "diskstats",
    "netdev",
    "pressure",
    "vmstat",
    "stat",
)


def _lib(pattern: str) -> Path | None:
    found = sorted(LIBS.glob(pattern))
    return found[-1] if found else None


def jmx_agent_jar() -> Path | None:
    return _lib("jmx_prometheus_javaagent-*.jar")


def zipkin_jar() -> Path | None:
    return _lib("zipkin-server-*-exec.jar")


def kafka_agent_args(settings: Settings) -> list[str]:
    """The broker's ``-javaagent:`` for its JMX metrics, or nothing when the jar is not fetched."""
    jar = jmx_agent_jar()
    if jar is None or not settings.kafka_metrics_port:
        return []
    return [f"-javaagent:{jar}=127.0.0.1:{settings.kafka_metrics_port}:{KAFKA_JMX_CONFIG}"]


# --- Prometheus configuration -------------------------------------------------------------------


def prometheus_dir(settings: Settings) -> Path:
    return settings.data_path / "prometheus"


def targets_dir(settings: Settings) -> Path:
    return prometheus_dir(settings) / "targets"


@dataclass(frozen=True)
class Job:
    """A scrape job: its name, its metrics path, and the file its targets are discovered from."""

    name: str
    metrics_path: str = "/metrics"


def _target(port: int, process: str, **labels: str) -> dict[str, Any]:
    return {"targets": [f"127.0.0.1:{port}"], "labels": {"process": process, **labels}}


def scrape_targets(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every scrape job's target groups, from the settings and the running instance counts."""
    from shopstream_tools.runtime import platform  # platform imports this module

    jobs: dict[str, list[dict[str, Any]]] = {}
    counts = platform.instance_counts(settings)
    for spec in platform.specs():
        jobs[spec.name] = [
            _target(
                settings.service_port(spec.name, i),
                platform.instance_name(spec.name, i),
                service=spec.name,
            )
            for i in range(1, counts.get(spec.name, 0) + 1)
        ]
        jobs[f"{spec.name}-relay"] = [
            _target(
                platform.relay_metrics_port(settings, spec.name),
                f"{spec.name}-relay",
                service=spec.name,
            )
        ]
        jobs[f"{spec.name}-consumer"] = [
            _target(worker.metrics_port, worker.name, service=spec.name)
            for worker in platform.workers(settings, spec)
        ]
    for job, port in (
        ("gateway", settings.nginx_exporter_port),
        ("postgres", settings.postgres_exporter_port),
        ("node", settings.node_exporter_port),
    ):
        if port:  # the lab runs Prometheus without the exporters (they would be measured too)
            jobs[job] = [_target(port, job)]
    if settings.kafka_metrics_port and jmx_agent_jar() is not None:
        jobs["kafka"] = [_target(settings.kafka_metrics_port, "kafka")]
    # supervisord's event listener: restarts and crash loops of the supervised processes
    jobs["supervisor"] = [_target(supervision.metrics_port(settings), supervision.WATCH)]
    jobs["prometheus"] = [_target(settings.prometheus_port, PROMETHEUS)]
    if settings.alertmanager_port:
        jobs["alertmanager"] = [_target(settings.alertmanager_port, ALERTMANAGER)]
    if settings.zipkin_port and zipkin_jar() is not None:
        jobs["zipkin"] = [_target(settings.zipkin_port, ZIPKIN)]
    if settings.console_port and _console_present():
        jobs["console"] = [_target(settings.console_port, CONSOLE)]
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


def prometheus_config(settings: Settings, jobs: Sequence[str]) -> str:
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
    return "# Written by `shopstream up` (shopstream_tools/runtime/observability.py): do not edit.\n" + (
        yaml.safe_dump(config, sort_keys=False)
    )


def _alerting(settings: Settings) -> dict[str, Any]:
    if not settings.alertmanager_port:
        return {}
    target = f"127.0.0.1:{settings.alertmanager_port}"
    return {"alerting": {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}}


def write_prometheus_config(settings: Settings) -> Path:
    jobs = write_targets(settings)
    path = prometheus_dir(settings) / "prometheus.yml"
    path.write_text(prometheus_config(settings, list(jobs)))
    return path


def promtool() -> str:
    return shutil.which("promtool") or "/usr/bin/promtool"


# --- Alertmanager configuration -----------------------------------------------------------------

# Local notifications should arrive while the cause is still on screen: a first notification 10 s
# after an alert fires, changes (a new alert, a resolution) within 30 s. A still-firing alert is
# repeated every 4 h, so the notification log stays short.
GROUP_WAIT = "10s"
GROUP_INTERVAL = "30s"
REPEAT_INTERVAL = "4h"
CONSOLE_RECEIVER = "console"


def alertmanager_dir(settings: Settings) -> Path:
    return settings.data_path / "alertmanager"


def alertmanager_config(settings: Settings) -> str:
    """One route to one receiver: the console's webhook, when the console runs."""
    receiver: dict[str, Any] = {"name": CONSOLE_RECEIVER}
    if settings.console_port and _console_present():
        webhook = f"http://127.0.0.1:{settings.console_port}/api/alerts/notifications"
        receiver["webhook_configs"] = [{"url": webhook, "send_resolved": True}]
    config = {
        "route": {
            "receiver": CONSOLE_RECEIVER,
            # every label set its own group: each alert is notified, and resolved, on its own
            "group_by": ["..."],
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": REPEAT_INTERVAL,
        },
        "receivers": [receiver],
    }
    return "# Written by `shopstream up` (shopstream_tools/runtime/observability.py): do not edit.\n" + (
        yaml.safe_dump(config, sort_keys=False)
    )


def write_alertmanager_config(settings: Settings) -> Path:
    home = alertmanager_dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "alertmanager.yml"
    path.write_text(alertmanager_config(settings))
    return path


def amtool() -> str:
    return shutil.which("amtool") or "/usr/bin/amtool"


# --- processes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One observability process: how to start it and how to tell it answers."""

    name: str
    port: int
    health_path: str
    argv: Callable[[Settings], list[str]]
    env: Callable[[Settings], dict[str, str]] = lambda s: {}
    timeout: float = 30.0

    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.health_path}"


def _prometheus_argv(settings: Settings) -> list[str]:
    home = prometheus_dir(settings)
    return [
        shutil.which("prometheus") or "/usr/bin/prometheus",
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'tsdb'}",
        f"--storage.tsdb.retention.time={settings.prometheus_retention}",
        f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
        "--web.enable-lifecycle",
    ]


def _alertmanager_argv(settings: Settings) -> list[str]:
    home = alertmanager_dir(settings)
    url = f"http://127.0.0.1:{settings.alertmanager_port}"
    return [
        shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager",
        f"--config.file={home / 'alertmanager.yml'}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}",
        f"--web.external-url={url}",
        # a single instance: no gossip port (its default, 0.0.0.0:9094, would clash between platforms)
        "--cluster.listen-address=",
    ]


def _node_argv(settings: Settings) -> list[str]:
    return [
        shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter",
        f"--web.listen-address=127.0.0.1:{settings.node_exporter_port}",
        "--collector.disable-defaults",
        *(f"--collector.{name}" for name in NODE_COLLECTORS),
    ]


def _nginx_argv(settings: Settings) -> list[str]:
    return [
        shutil.which("prometheus-nginx-exporter") or "/usr/bin/prometheus-nginx-exporter",
        f"-nginx.scrape-uri=http://127.0.0.1:{settings.gateway_status_port}/nginx_status",
        f"-web.listen-address=127.0.0.1:{settings.nginx_exporter_port}",
        "-nginx.retries=30",
        "-nginx.retry-interval=1s",
    ]


def _postgres_argv(settings: Settings) -> list[str]:
    return [
        shutil.which("prometheus-postgres-exporter") or "/usr/bin/prometheus-postgres-exporter",
        f"--web.listen-address=127.0.0.1:{settings.postgres_exporter_port}",
        "--disable-settings-metrics",
    ]


def _postgres_env(settings: Settings) -> dict[str, str]:
    auth = settings.postgres_user
    if settings.postgres_password:
        auth += f":{settings.postgres_password}"
    dsn = f"postgresql://{auth}@{settings.postgres_host}:{settings.postgres_port}/postgres"
    return {"DATA_SOURCE_NAME": dsn + "?sslmode=disable"}


def _zipkin_argv(settings: Settings) -> list[str]:
    jar = zipkin_jar()
    assert jar is not None
    heap = settings.zipkin_heap
    return [
        "java",
        "-Xms32m",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",  # one small heap on 2 cores: the least memory and threads
        "-XX:TieredStopAtLevel=1",
        "-Xss512k",
        "-jar",
        str(jar),
        "--server.address=127.0.0.1",
        "--logging.level.root=WARN",
    ]


def _zipkin_env(settings: Settings) -> dict[str, str]:
    return {"QUERY_PORT": str(settings.zipkin_port), "STORAGE_TYPE": "mem", "MEM_MAX_SPANS": "200000"}


def _console_argv(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.console_port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--factory",
        "shopstream_tools.console.app:create",
    ]


def components(settings: Settings) -> list[Component]:
    """The observability processes this machine and these settings call for, in start order."""
    wanted: list[Component] = []
    if settings.node_exporter_port:
        wanted.append(Component(NODE_EXPORTER, settings.node_exporter_port, "/metrics", _node_argv))
    if settings.nginx_exporter_port:
        wanted.append(
            Component(NGINX_EXPORTER, settings.nginx_exporter_port, "/metrics", _nginx_argv)
        )
    if settings.postgres_exporter_port:
        wanted.append(
            Component(
                POSTGRES_EXPORTER,
                settings.postgres_exporter_port,
                "/metrics",
                _postgres_argv,
                _postgres_env,
            )
        )
    if settings.zipkin_port and zipkin_jar() is not None:
        wanted.append(
            Component(ZIPKIN, settings.zipkin_port, "/health", _zipkin_argv, _zipkin_env, 90.0)
        )
    if settings.alertmanager_port:
        wanted.append(
            Component(ALERTMANAGER, settings.alertmanager_port, "/-/ready", _alertmanager_argv)
        )
    if settings.prometheus_port:
        wanted.append(
            Component(PROMETHEUS, settings.prometheus_port, "/-/ready", _prometheus_argv)
        )
    if settings.console_port and _console_present():
        wanted.append(
            Component(CONSOLE, settings.console_port, "/health/ready", _console_argv)
        )
    return wanted


def _console_present() -> bool:
    return (PROJECT_ROOT / "shopstream_tools" / "console" / "app.py").exists()


def _reload(comp: Component) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{comp.port}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as exc:  # the files are still right; the next start reads them
        print(f"{comp.name} reload failed: {exc}", file=sys.stderr)


def start(settings: Settings, log: Callable[[str], object] = print) -> None:
    """Start every observability process that is not running and wait until each answers."""
    prometheus_dir(settings).mkdir(parents=True, exist_ok=True)
    write_prometheus_config(settings)
    if settings.alertmanager_port:
        write_alertmanager_config(settings)
    started: list[Component] = []
    for comp in components(settings):
        if processes.alive(processes.read_pid(settings, comp.name)):
            if comp.name in (PROMETHEUS, ALERTMANAGER):
                _reload(comp)  # rules, jobs or receivers may have changed since it started
            continue
        processes.spawn(settings, comp.name, comp.argv(settings), env=comp.env(settings))
        started.append(comp)
    for comp in started:
        processes.wait_until(
            functools.partial(processes.http_ok, comp.health_url()),
            comp.timeout,
            comp.name,
            processes.read_pid(settings, comp.name),
        )
    for comp in components(settings):
        log(f"{comp.name:<9} ready on :{comp.port}")


def status(settings: Settings) -> list[tuple[str, int | None, int, str]]:
    """(name, pid, port, health) of each observability process, for ``shopstream status``."""
    rows = []
    for comp in components(settings):
        healthy = processes.http_ok(comp.health_url())
        rows.append(
            (
                comp.name,
                processes.read_pid(settings, comp.name),
                comp.port,
                "up" if healthy else "starting",
            )
        )
    return rows
