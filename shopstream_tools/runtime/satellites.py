"""The platform's satellites beside Prometheus: Zipkin (a jar fetched by ``scripts/bootstrap.sh``),
the operator console, and Alertmanager's process name. Both the Prometheus and the Alertmanager
configurations ask what runs here (a target to scrape, a webhook to call)."""

from __future__ import annotations

from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import exporters, serving
from shopstream_tools.runtime.gateway_conf import size_bytes

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


# Zipkin's in-memory store keeps MEM_MAX_SPANS spans (default 500,000) whatever its heap. A sampled
# order's spans take ~3.5 KB each there (a full store of 65,536 left 230-247 MB of a 256m heap
# live): past that every allocation meant a full collection, which made Zipkin the costliest
# process of a traced order (docs/performance, tracing). 8 KiB of heap per span keeps the store
# under half of it.
HEAP_PER_SPAN = 8192


def zipkin_max_spans(heap: str) -> int:
    """The spans Zipkin may keep in a heap of ``heap`` (the JVM's -Xmx syntax: 256m, 1g)."""
    return size_bytes(heap) // HEAP_PER_SPAN


def zipkin_env(settings: Settings) -> dict[str, str]:
    return {
        "QUERY_PORT": str(settings.zipkin_port),
        "STORAGE_TYPE": "mem",
        "MEM_MAX_SPANS": str(zipkin_max_spans(settings.zipkin_heap)),
    }


def console_argv(settings: Settings) -> list[str]:
    return serving.granian_argv(
        "shopstream_tools.console.app:create", "127.0.0.1", settings.console_port
    )
