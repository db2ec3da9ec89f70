"""The local platform's observability processes: Prometheus, Alertmanager, the exporters, Zipkin,
the console.

``up`` calls ``start`` once the gateway answers: it writes Prometheus' configuration and discovery
targets (``prometheus``) and Alertmanager's (``alertmanager``), then starts whatever is not
running. ``down`` stops these processes with the rest, by their pid files in ``<data>/run``.
"""

from __future__ import annotations

import functools
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from shopstream.config import Settings
from shopstream_tools.runtime import alertmanager, exporters, processes, prometheus, satellites


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


def components(settings: Settings) -> list[Component]:
    """The observability processes this machine and these settings call for, in start order."""
    wanted: list[Component] = []
    if settings.node_exporter_port:
        wanted.append(
            Component(
                exporters.NODE_EXPORTER,
                settings.node_exporter_port,
                "/metrics",
                exporters.node_argv,
            )
        )
    if settings.nginx_exporter_port:
        wanted.append(
            Component(
                exporters.NGINX_EXPORTER,
                settings.nginx_exporter_port,
                "/metrics",
                exporters.nginx_argv,
            )
        )
    if settings.postgres_exporter_port:
        wanted.append(
            Component(
                exporters.POSTGRES_EXPORTER,
                settings.postgres_exporter_port,
                "/metrics",
                exporters.postgres_argv,
                exporters.postgres_env,
            )
        )
    if settings.zipkin_port and satellites.zipkin_jar() is not None:
        wanted.append(
            Component(
                satellites.ZIPKIN,
                settings.zipkin_port,
                "/health",
                satellites.zipkin_argv,
                satellites.zipkin_env,
                90.0,
            )
        )
    if settings.alertmanager_port:
        wanted.append(
            Component(
                satellites.ALERTMANAGER, settings.alertmanager_port, "/-/ready", alertmanager.argv
            )
        )
    if settings.prometheus_port:
        wanted.append(
            Component(prometheus.PROMETHEUS, settings.prometheus_port, "/-/ready", prometheus.argv)
        )
    if settings.console_port and satellites.console_present():
        wanted.append(
            Component(
                satellites.CONSOLE, settings.console_port, "/health/ready", satellites.console_argv
            )
        )
    return wanted


def _reload(comp: Component) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{comp.port}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as exc:  # the files are still right; the next start reads them
        print(f"{comp.name} reload failed: {exc}", file=sys.stderr)


def start(settings: Settings, log: Callable[[str], object] = print) -> None:
    """Start every observability process that is not running and wait until each answers."""
    prometheus.home(settings).mkdir(parents=True, exist_ok=True)
    prometheus.write_config(settings)
    if settings.alertmanager_port:
        alertmanager.write_config(settings)
    started: list[Component] = []
    for comp in components(settings):
        if processes.alive(processes.read_pid(settings, comp.name)):
            if comp.name in (prometheus.PROMETHEUS, satellites.ALERTMANAGER):
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
