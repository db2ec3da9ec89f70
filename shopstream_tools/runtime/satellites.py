"""The platform's satellites beside Prometheus: Zipkin (a jar fetched by ``scripts/bootstrap.sh``),
the operator console, and Alertmanager's process name. Both the Prometheus and the Alertmanager
configurations ask what runs here (a target to scrape, a webhook to call)."""

from __future__ import annotations

from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import exporters, serving

ALERTMANAGER = "alertmanager"
ZIPKIN = "zipkin"
CONSOLE = "console"


def zipkin_jar() -> Path | None:
    return exporters.fetched_jar("zipkin-server-*-exec.jar")


def console_present() -> bool:
    return (PROJECT_ROOT / "shopstream_tools" / "console" / "app.py").exists()


def zipkin_argv(settings: Settings) -> list[str]:
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


def zipkin_env(settings: Settings) -> dict[str, str]:
    return {
        "QUERY_PORT": str(settings.zipkin_port),
        "STORAGE_TYPE": "mem",
        "MEM_MAX_SPANS": "200000",
    }


def console_argv(settings: Settings) -> list[str]:
    return serving.granian_argv(
        "shopstream_tools.console.app:create", "127.0.0.1", settings.console_port
    )
