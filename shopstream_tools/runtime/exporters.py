"""The exporters Prometheus scrapes beside the services: node, nginx and PostgreSQL exporters
(Debian packages), and the JMX exporter agent inside the Kafka broker (a jar fetched by
``scripts/bootstrap.sh`` into ``infra/observability/libs``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings

KAFKA_JMX_CONFIG = PROJECT_ROOT / "infra" / "prometheus" / "kafka-jmx.yaml"
LIBS = PROJECT_ROOT / "infra" / "observability" / "libs"

NODE_EXPORTER = "node-exporter"
NGINX_EXPORTER = "nginx-exporter"
POSTGRES_EXPORTER = "postgres-exporter"

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


def fetched_jar(pattern: str) -> Path | None:
    found = sorted(LIBS.glob(pattern))
    return found[-1] if found else None


def jmx_agent_jar() -> Path | None:
    return fetched_jar("jmx_prometheus_javaagent-*.jar")


def kafka_agent_args(settings: Settings) -> list[str]:
    """The broker's ``-javaagent:`` for its JMX metrics, or nothing when the jar is not fetched."""
    jar = jmx_agent_jar()
    if jar is None or not settings.kafka_metrics_port:
        return []
    return [f"-javaagent:{jar}=127.0.0.1:{settings.kafka_metrics_port}:{KAFKA_JMX_CONFIG}"]


def node_argv(settings: Settings) -> list[str]:
    return [
        shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter",
        f"--web.listen-address=127.0.0.1:{settings.node_exporter_port}",
        "--collector.disable-defaults",
        *(f"--collector.{name}" for name in NODE_COLLECTORS),
    ]


def nginx_argv(settings: Settings) -> list[str]:
    return [
        shutil.which("prometheus-nginx-exporter") or "/usr/bin/prometheus-nginx-exporter",
        f"-nginx.scrape-uri=http://127.0.0.1:{settings.gateway_status_port}/nginx_status",
        f"-web.listen-address=127.0.0.1:{settings.nginx_exporter_port}",
        "-nginx.retries=30",
        "-nginx.retry-interval=1s",
    ]


def postgres_argv(settings: Settings) -> list[str]:
    return [
        shutil.which("prometheus-postgres-exporter") or "/usr/bin/prometheus-postgres-exporter",
        f"--web.listen-address=127.0.0.1:{settings.postgres_exporter_port}",
        "--disable-settings-metrics",
    ]


def postgres_env(settings: Settings) -> dict[str, str]:
    """The admin role, whose password the exporter reads from its file: no secret in the
    supervisor's configuration or in the process's environment."""
    return {
        "DATA_SOURCE_URI": f"{settings.postgres_host}:{settings.postgres_port}/postgres"
        "?sslmode=disable",
        "DATA_SOURCE_USER": settings.postgres_admin_user,
        "DATA_SOURCE_PASS_FILE": str(
            settings.postgres_credentials_path / settings.postgres_admin_user
        ),
    }
